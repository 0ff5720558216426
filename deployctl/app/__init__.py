"""Use cases. Each takes explicit inputs, returns a frozen result and never prints."""
