"""Received text messages (inbound SMS): stored from the SMS provider's webhook, read back
through ``GET /v2/received-text-messages`` (newest first, paged by ``older_than``), and —
when the service set one up — posted to its inbound-SMS callback (:mod:`notify_callbacks`).
The numbers and texts are personal data: never logged; deleted after the retention period
(as Notify, 7 days by default)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from notifications.application.notify_auth import Caller
from notifications.config import Settings
from notifications.domain import recipients
from notifications.domain.notify import parse_uuid
from notifications.persistence.notify_received import ReceivedTextRepository
from notifications.persistence.tables import NotifyReceivedText

log = logging.getLogger(__name__)
PAGE_SIZE = 250
PURGE_BATCH = 500


def _number(value: str) -> str:
    """E.164 if it is a valid mobile number, else its digits with a ``+``."""
    try:
        return recipients.normalise_phone(value)
    except recipients.InvalidRecipient:
        digits = "".join(ch for ch in value if ch.isdigit())
        return "+" + digits if digits else value.strip()


async def receive_text(
    texts: ReceivedTextRepository,
    settings: Settings,
    *,
    from_number: str,
    to_number: str,
    content: str,
    provider_reference: str | None,
    received_at: datetime | None = None,
) -> NotifyReceivedText | None:
    """Store a text sent to ``to_number``: it is for the Notify service with that SMS
    sender, else the council's own. ``None`` if the provider sent it before (same
    reference)."""

    def same(a: str, b: str) -> bool:
        return _number(a) == _number(b)

    service_id = (
        await texts.service_of_number(to_number, same) or settings.notify_default_service_id
    )
    text = NotifyReceivedText(
        id=uuid.uuid4(),
        service_id=service_id,
        user_number=_number(from_number)[:20],
        notify_number=_number(to_number).lstrip("+")[:20],
        content=content,
        provider_reference=provider_reference,
        created_at=received_at or datetime.now(UTC),
    )
    if not await texts.insert(text):
        log.info("received text already stored (provider reference seen before)")
        return None
    log.info("received text %s for notify service %s", text.id, service_id)
    return text


async def list_received(
    texts: ReceivedTextRepository,
    caller: Caller,
    *,
    older_than: str | None,
    page_size: int = PAGE_SIZE,
) -> list[NotifyReceivedText]:
    anchor = parse_uuid(older_than, "older_than") if older_than else None
    return await texts.page(service_id=caller.service.id, older_than=anchor, limit=page_size)


def received_json(text: NotifyReceivedText, time: Any) -> dict[str, Any]:
    """Notify's received text object (``time`` formats a datetime as the API does)."""
    return {
        "id": str(text.id),
        "user_number": text.user_number.lstrip("+"),
        "notify_number": text.notify_number,
        "created_at": time(text.created_at),
        "service_id": str(text.service_id),
        "content": text.content,
    }


async def purge_received(
    texts: ReceivedTextRepository, settings: Settings, *, now: datetime
) -> int:
    return await texts.delete_older_than(
        now - timedelta(days=settings.content_retention_days), limit=PURGE_BATCH
    )
