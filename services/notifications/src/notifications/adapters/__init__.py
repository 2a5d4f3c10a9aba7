"""Delivery adapters: SMTP for email (SMS providers arrive with the notifications issue)."""
