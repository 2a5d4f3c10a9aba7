"""Events of the notifications context: delivery status of notifications.

No personal data: a notification appears by its id, never by its recipient or content.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import Field

from contracts.events import Event
from contracts.topics import NOTIFICATION


class NotificationStatusChanged(Event):
    """A notification moved to a new delivery status (GOV.UK Notify's status names)."""

    context: ClassVar[str] = "notifications"
    topic: ClassVar[str] = NOTIFICATION.name
    aggregate_field: ClassVar[str] = "notification_id"

    notification_id: uuid.UUID = Field(description="Notification id (the aggregate id).")
    channel: str = Field(description="email or sms.")
    status: str = Field(
        description="created, sending, delivered, temporary-failure, "
        "permanent-failure or technical-failure."
    )
    previous_status: str | None = Field(
        default=None, description="The status before; null when created."
    )
    reference: str | None = Field(
        default=None, description="The sender's own reference, if they gave one."
    )
    notify_service_id: uuid.UUID | None = Field(
        default=None,
        description="The Notify API service that sent it (null for messages "
        "the platform's own rules sent).",
    )
    template_id: uuid.UUID | None = None
    template_version: int | None = None
    source_event_id: str | None = Field(
        default=None, description="The event that caused it, if any."
    )
    occurred_at: datetime


#: Every event this context publishes (``contracts.all_events()`` combines the contexts).
EVENTS: tuple[type[Event], ...] = (NotificationStatusChanged,)
