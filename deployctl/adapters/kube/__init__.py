"""The Kubernetes API through the official client: clients, error translation, listings and helm's release records."""
