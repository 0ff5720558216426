"""Webhook notifications: every event, its title and its builder (``events``), and their delivery (``send``)."""
