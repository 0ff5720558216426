"""Webhook notifications: every event and its delivery."""
