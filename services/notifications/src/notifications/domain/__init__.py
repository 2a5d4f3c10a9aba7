"""Notification domain: statuses and rules (plain Python)."""
