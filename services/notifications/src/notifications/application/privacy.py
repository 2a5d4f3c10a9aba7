"""What notifications forgets, and when.

* **Erasure** (``CitizenErasureRequested``, once per event through the inbox): the citizen's
  contact details, pending address and choices are deleted; their messages (found by
  ``citizen_id``, and /v2 messages without a citizen by the citizen's confirmed address or
  phone) keep their status rows but lose recipient, subject and bodies; one not sent yet
  is not sent (``technical-failure``); the subject id is taken out of the webhook delivery
  log's payloads. Notify's own records go too: files sent by email with their messages,
  texts received from their phone, and callbacks naming them (a received text's callback is
  deleted, a delivery receipt keeps its status without the recipient).
* **Retention**: a message older than ``content_retention_days`` (7, as GOV.UK Notify) that
  has reached a final status is blanked the same way by :class:`RetentionWorker`, which
  runs every ``retention_purge_interval_seconds`` and sleeps in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.privacy import CitizenErasureRequested
from notifications.application.notify_callbacks import purge_callbacks
from notifications.application.notify_files import purge_expired_files
from notifications.application.notify_received import purge_received
from notifications.config import Settings
from notifications.domain.notification import FINAL, Status, status_changed
from notifications.persistence.contacts import ContactRepository
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.notify_callbacks import NotifyCallbackRepository
from notifications.persistence.notify_files import NotifyFileRepository
from notifications.persistence.notify_received import ReceivedTextRepository
from notifications.persistence.webhooks import WebhookRepository
from servicekit.db import Database
from servicekit.messaging.consumer import MessageContext
from servicekit.redact import without
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)
#: What a redacted message keeps: id, channel, status and its times, reference (Notify: "must
#: not contain any personal information"), template, service and source event.
REDACTED: dict[str, Any] = {
    "recipient": None,
    "subject": None,
    "body": "",
    "html_body": None,
    "text_body": None,
    "unsubscribe_url": None,
}
NOT_SENT = "Not sent: the recipient's data was erased."
PURGE_BATCH = 500


async def erase_citizen(event: CitizenErasureRequested, ctx: MessageContext) -> None:
    db = ctx.uow.db
    await erase(
        ctx.uow,
        ContactRepository(db),
        NotificationRepository(db),
        WebhookRepository(db),
        citizen_id=event.citizen_id,
        notify=NotifyRecords(
            NotifyFileRepository(db), ReceivedTextRepository(db), NotifyCallbackRepository(db)
        ),
    )


@dataclass(frozen=True)
class NotifyRecords:
    """The Notify API's own tables that can hold a citizen's data."""

    files: NotifyFileRepository
    received: ReceivedTextRepository
    callbacks: NotifyCallbackRepository


async def erase(
    uow: UnitOfWork,
    contacts: ContactRepository,
    notifications: NotificationRepository,
    webhooks: WebhookRepository,
    *,
    citizen_id: str,
    notify: NotifyRecords | None = None,
) -> int:
    """Forget the citizen in the unit of work; returns how many messages were redacted.
    Running it again changes nothing."""
    now = datetime.now(UTC)
    contact = await contacts.get(citizen_id)
    addresses = [a for a in ((contact.email, contact.phone) if contact else ()) if a]
    unsent = await notifications.unsent_of_citizen(citizen_id, addresses)
    for row in unsent:  # never sent now: there is nobody to send it to
        uow.publish(status_changed(row, Status.TECHNICAL_FAILURE, Status.CREATED.value, now))
    if unsent:
        await notifications.fail([r["id"] for r in unsent], now=now, error=NOT_SENT)
    if notify is not None:
        await _erase_notify_records(
            notify, await notifications.ids_of_citizen(citizen_id, addresses), contact
        )
    # the subject id goes too (retention keeps it)
    redacted = await notifications.redact_citizen(citizen_id, addresses, blank=REDACTED, now=now)
    await contacts.delete_consents(citizen_id)
    if contact is not None:
        await contacts.delete(contact)
    await _scrub_webhook_payloads(webhooks, citizen_id)
    log.info("erasure: %d messages redacted", redacted)
    return redacted


async def _erase_notify_records(
    notify: NotifyRecords, message_ids: list[uuid.UUID], contact: Any
) -> None:
    await notify.files.delete_of_notifications(message_ids)
    phone = contact.phone if contact is not None else None
    if phone:
        await notify.received.delete_from([phone])
    # A callback's payload names the recipient: a delivery receipt's "to" (address or number
    # as sent), a received text's "source_number" (E.164 without the "+").
    names = [a for a in ((contact.email, phone) if contact is not None else ()) if a]
    names += [str(i) for i in message_ids]
    seen: set[uuid.UUID] = set()
    for name in names:
        for callback_id, kind, payload in await notify.callbacks.containing(name):
            if callback_id in seen:
                continue
            seen.add(callback_id)
            if kind == "received-text":
                await notify.callbacks.delete(callback_id)
                continue
            body = json.loads(payload)
            if body.get("id") in {str(i) for i in message_ids} or body.get("to") in names:
                body["to"] = None
                await notify.callbacks.update(callback_id, payload=json.dumps(body))
    if phone:
        for callback_id, kind, _ in await notify.callbacks.containing(phone.lstrip("+")):
            if kind == "received-text" and callback_id not in seen:
                await notify.callbacks.delete(callback_id)


async def _scrub_webhook_payloads(webhooks: WebhookRepository, subject: str) -> None:
    """Partners' payloads (e.g. ServiceRequestStatusChanged) carry the subject id."""
    for row_id, payload in await webhooks.payloads_containing(json.dumps(subject)):
        await webhooks.update_delivery(
            row_id, payload=json.dumps(without(json.loads(payload), subject))
        )


async def purge_expired(
    database: Database, settings: Settings, *, now: datetime | None = None
) -> int:
    """Blank every finished message older than the retention period; returns how many
    (a unit of work per batch of :data:`PURGE_BATCH`)."""
    now = now or datetime.now(UTC)
    total = 0
    while True:
        async with UnitOfWork(database, source=settings.cloudevents_source) as uow:
            done = await purge_batch(NotificationRepository(uow.db), settings, now=now)
        total += done
        if done < PURGE_BATCH:
            break
    if total:
        log.info("retention: %d messages redacted", total)
    files = 0
    while True:  # files sent by email, past their own retention period
        async with UnitOfWork(database, source=settings.cloudevents_source) as uow:
            done = await purge_expired_files(NotifyFileRepository(uow.db), now=now)
        files += done
        if done < PURGE_BATCH:
            break
    if files:
        log.info("retention: %d files sent by email deleted", files)
    texts = 0
    while True:  # received text messages, after the same retention period
        async with UnitOfWork(database, source=settings.cloudevents_source) as uow:
            done = await purge_received(ReceivedTextRepository(uow.db), settings, now=now)
        texts += done
        if done < PURGE_BATCH:
            break
    if texts:
        log.info("retention: %d received texts deleted", texts)
    while True:  # callbacks to Notify services (their payloads name recipients)
        async with UnitOfWork(database, source=settings.cloudevents_source) as uow:
            done = await purge_callbacks(NotifyCallbackRepository(uow.db), settings, now=now)
        if done < PURGE_BATCH:
            break
    return total


async def purge_batch(
    notifications: NotificationRepository, settings: Settings, *, now: datetime
) -> int:
    """Blank up to :data:`PURGE_BATCH` finished messages older than the retention period."""
    return await notifications.redact_expired(
        created_before=now - timedelta(days=settings.content_retention_days),
        statuses=[s.value for s in FINAL],
        blank=REDACTED,
        now=now,
        limit=PURGE_BATCH,
    )


class RetentionWorker:
    """Runs :func:`purge_expired` at start-up and then every interval; between runs it
    sleeps (no polling), so an idle service costs nothing."""

    name = "notification-retention"

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database, self.settings = database, settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await purge_expired(self.database, self.settings)
            except Exception:
                log.exception("%s: purge failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), timeout=self.settings.retention_purge_interval_seconds
                )
