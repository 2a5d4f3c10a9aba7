"""Notification statuses, as GOV.UK Notify names them, and the event a change of status
records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from contracts.notifications import NotificationStatusChanged


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


#: The statuses a notification ends in.
FINAL = frozenset(
    {Status.DELIVERED, Status.PERMANENT_FAILURE, Status.TEMPORARY_FAILURE, Status.TECHNICAL_FAILURE}
)


def status_changed(
    row: Mapping[str, Any], status: Status, previous: str | None, now: datetime
) -> NotificationStatusChanged:
    """The event of ``row`` (a notification's columns) moving from ``previous`` to
    ``status``: every change of status records one, in the transaction that makes it."""
    return NotificationStatusChanged(
        notification_id=row["id"],
        channel=row["channel"],
        status=status.value,
        previous_status=previous,
        reference=row.get("reference"),
        notify_service_id=row.get("service_id"),
        template_id=row.get("template_id"),
        template_version=row.get("template_version"),
        source_event_id=row.get("source_event_id"),
        occurred_at=now,
    )
