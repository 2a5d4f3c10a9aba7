"""Event handlers that turn catalogue events into staff alerts."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.citizen_services import ServicePublished
from notifications.application.delivery import queue
from notifications.config import Settings
from notifications.domain.notification import Channel, Status
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.tables import Notification
from servicekit.messaging.consumer import MessageContext
from servicekit.uow import UnitOfWork


async def alert_staff_service_published(event: ServicePublished, ctx: MessageContext) -> None:
    """Email the digital services team that a service went live (one email per event)."""
    await alert_staff(
        ctx.uow,
        NotificationRepository(ctx.uow.db),
        event,
        settings=ctx.settings,
        event_id=ctx.envelope.id,
        event_type=ctx.envelope.type,
    )


async def alert_staff(
    uow: UnitOfWork,
    notifications: NotificationRepository,
    event: ServicePublished,
    *,
    settings: Settings,
    event_id: str,
    event_type: str,
) -> None:
    if not settings.staff_alert_email:
        return
    now = datetime.now(UTC)
    notification = Notification(
        channel=Channel.EMAIL.value,
        recipient=str(settings.staff_alert_email),
        subject=f"Service published: {event.name}",
        body=(
            f'The service "{event.name}" is now published in the council\'s catalogue.\n\n'
            f"Service code: {event.service_code}\n"
            f"Slug: {event.slug}\n"
            f"Catalogue version: {event.entry_version}\n"
            f"Published at: {event.occurred_at.isoformat()}\n"
        ),
        status=Status.CREATED.value,
        source_event_id=event_id,
        source_event_type=event_type,
        created_at=now,
        updated_at=now,
    )
    queue(uow, notifications, notification)
