"""Notification statuses, as GOV.UK Notify names them."""

from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Status(StrEnum):
    CREATED = "created"
    SENDING = "sending"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary-failure"
    PERMANENT_FAILURE = "permanent-failure"
    TECHNICAL_FAILURE = "technical-failure"
