"""Callbacks to the calling service, as GOV.UK Notify makes them: a delivery receipt when
a /v2 notification reaches a final status, and each received text message, POSTed as JSON
to the Notify service's callback URL with ``Authorization: Bearer <its token>``.

A callback is queued (``notify_callback``) in the transaction that records the status or
stores the text, and sent by ``NotifyCallbackWorker`` (:mod:`notify_callback_worker`)
through the partner webhooks' SSRF guard (:func:`check_endpoint` before every attempt,
the connection pinned to the address checked: ``PinnedTransport``; https on port 443
unless allow-listed). Any 2xx is done; anything else, or no answer, is retried on
Notify's schedule — 5 more times, 5 minutes apart (``NOTIFICATIONS_WEBHOOK_RETRY_SCALE``
multiplies it) — then it has failed.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from notifications.config import Settings
from notifications.domain.notification import Status
from notifications.persistence.notify_callbacks import NotifyCallbackRepository
from notifications.persistence.tables import NotifyCallback, NotifyReceivedText

log = logging.getLogger(__name__)

DELIVERY_STATUS, RECEIVED_TEXT = "delivery-status", "received-text"
KINDS = (DELIVERY_STATUS, RECEIVED_TEXT)
#: Notify's retries of a callback: 5 more attempts, 5 minutes apart.
RETRIES, RETRY_DELAY = 5, timedelta(minutes=5)
FINAL_STATUSES = frozenset(
    {
        Status.DELIVERED,
        Status.PERMANENT_FAILURE,
        Status.TEMPORARY_FAILURE,
        Status.TECHNICAL_FAILURE,
    }
)
PURGE_BATCH = 500


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def delivery_status_payload(row: Any, status: Status, now: datetime) -> dict[str, Any]:
    """Notify's delivery receipt for a notification row that just reached ``status``."""
    return {
        "id": str(row["id"]),
        "reference": row["reference"],
        "to": row["recipient"],
        "status": status.value,
        "created_at": _time(row["created_at"]),
        "completed_at": _time(now),
        "sent_at": _time(now if status is Status.DELIVERED else row.get("sent_at")),
        "notification_type": row["channel"],
        "template_id": str(row["template_id"]) if row.get("template_id") else None,
        "template_version": row.get("template_version"),
    }


def received_text_payload(text: NotifyReceivedText) -> dict[str, Any]:
    """Notify's received text callback."""
    return {
        "id": str(text.id),
        "source_number": text.user_number.lstrip("+"),
        "destination_number": text.notify_number,
        "message": text.content,
        "date_received": _time(text.created_at),
    }


def _queue(
    callbacks: NotifyCallbackRepository,
    service_id: uuid.UUID,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    callbacks.add(
        NotifyCallback(
            service_id=service_id,
            kind=kind,
            payload=json.dumps(payload),
            created_at=now,
            updated_at=now,
        )
    )


async def queue_delivery_receipts(
    callbacks: NotifyCallbackRepository,
    finished: Sequence[tuple[Any, Status]],
    *,
    now: datetime,
) -> int:
    """A receipt for each /v2 notification in ``finished`` (rows and their final status)
    whose service has a delivery-status callback; how many."""
    wanted = [(row, status) for row, status in finished if row.get("service_id")]
    if not wanted:
        return 0
    with_callback = await callbacks.services_with_callbacks(
        (row["service_id"] for row, _ in wanted), kind=DELIVERY_STATUS
    )
    queued = 0
    for row, status in wanted:
        if row["service_id"] in with_callback:
            _queue(
                callbacks,
                row["service_id"],
                DELIVERY_STATUS,
                delivery_status_payload(row, status, now),
                now,
            )
            queued += 1
    return queued


async def queue_received_text(
    callbacks: NotifyCallbackRepository, text: NotifyReceivedText
) -> bool:
    if not await callbacks.services_with_callbacks([text.service_id], kind=RECEIVED_TEXT):
        return False
    _queue(callbacks, text.service_id, RECEIVED_TEXT, received_text_payload(text), text.created_at)
    return True


async def purge_callbacks(
    callbacks: NotifyCallbackRepository, settings: Settings, *, now: datetime
) -> int:
    """Callbacks (their payloads hold recipients) older than the retention period."""
    return await callbacks.delete_older_than(
        now - timedelta(days=settings.content_retention_days), limit=PURGE_BATCH
    )
