"""Reading notifications back through the GOV.UK Notify API (``GET /v2/notifications``).
Errors are Notify's (:mod:`notifications.domain.notify`)."""

from __future__ import annotations

from notifications.application.notify_auth import Caller
from notifications.domain.notification import Status
from notifications.domain.notify import (
    KeyType,
    NoResultFound,
    NotifyValidationError,
    parse_uuid,
)
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.tables import Notification

PAGE_SIZE = 250  # Notify's page of GET /v2/notifications


async def get_notification(
    notifications: NotificationRepository, caller: Caller, notification_id: str
) -> Notification:
    nid = parse_uuid(notification_id, "notification_id")
    found = await notifications.get_of_service(nid, caller.service.id)
    if found is None:
        raise NoResultFound("No result found")
    return found


async def list_notifications(
    notifications: NotificationRepository,
    caller: Caller,
    *,
    template_types: list[str],
    statuses: list[str],
    reference: str | None,
    older_than: str | None,
    page_size: int = PAGE_SIZE,
) -> list[Notification]:
    """Newest first; test keys see what test keys sent, live and team keys the rest."""
    for value in template_types:
        if value not in ("email", "sms", "letter"):
            raise NotifyValidationError(f"template_type {value} is not one of [sms, email, letter]")
    wanted: list[str] = []
    if statuses:
        known = {s.value for s in Status}
        for value in statuses:
            if value not in known and value not in ("failed", "sent", "pending"):
                raise NotifyValidationError(
                    f"status {value} is not one of [{', '.join(s.value for s in Status)}]"
                )
        chosen = set(statuses)
        if "failed" in chosen:
            chosen |= {Status.TEMPORARY_FAILURE, Status.PERMANENT_FAILURE, Status.TECHNICAL_FAILURE}
        if "pending" in chosen:
            chosen |= {Status.CREATED, Status.SENDING}
        wanted = sorted(chosen)
    anchor = parse_uuid(older_than, "older_than") if older_than else None
    return await notifications.list_of_service(
        service_id=caller.service.id,
        test_key=caller.key_type is KeyType.TEST,
        channels=template_types,
        statuses=wanted,
        reference=reference,
        older_than=anchor,
        limit=page_size,
    )
