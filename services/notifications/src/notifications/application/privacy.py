"""What notifications forgets, and when.

* **Erasure** (``CitizenErasureRequested``, once per event through the inbox): the citizen's
  contact details, pending address and choices are deleted; their messages (found by
  ``citizen_id``, and /v2 messages without a citizen by the citizen's confirmed address or
  phone) keep their status rows but lose recipient, subject and bodies; one not sent yet
  is not sent (``technical-failure``); the subject id is taken out of the webhook delivery
  log's payloads.
* **Retention**: a message older than ``content_retention_days`` (7, as GOV.UK Notify) that
  has reached a final status is blanked the same way by :class:`RetentionWorker`, which
  runs every ``retention_purge_interval_seconds`` and sleeps in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.privacy import CitizenErasureRequested
from notifications.application.delivery import FINAL, publish_status
from notifications.config import Settings
from notifications.domain.notification import Status
from notifications.persistence.tables import (
    CitizenContact,
    Consent,
    Notification,
    WebhookDelivery,
)
from servicekit.db import Database
from servicekit.messaging.consumer import MessageContext

log = logging.getLogger(__name__)
T = Notification.__table__  # type: ignore[attr-defined]
W = WebhookDelivery.__table__  # type: ignore[attr-defined]
#: What a redacted message keeps: id, channel, status and its times, reference (Notify: "must
#: not contain any personal information"), template, service and source event.
REDACTED: dict[str, Any] = {"recipient": None, "subject": None, "body": "",
                            "html_body": None, "text_body": None, "unsubscribe_url": None}
NOT_SENT = "Not sent: the recipient's data was erased."
PURGE_BATCH = 500


async def erase_citizen(event: CitizenErasureRequested, ctx: MessageContext, *,
                        settings: Settings) -> None:
    await erase(ctx.uow.db, citizen_id=event.citizen_id, settings=settings)


async def erase(session: AsyncSession, *, citizen_id: str, settings: Settings) -> int:
    """Forget the citizen in ``session``'s transaction; returns how many messages were
    redacted. Running it again changes nothing."""
    now = datetime.now(UTC)
    contact = await session.get(CitizenContact, citizen_id)
    addresses = [a for a in ((contact.email, contact.phone) if contact else ()) if a]
    theirs = sa.or_(T.c.citizen_id == citizen_id,
                    sa.and_(T.c.citizen_id.is_(None), T.c.recipient.in_(addresses))
                    ) if addresses else T.c.citizen_id == citizen_id
    unsent = (await session.execute(sa.select(T).where(
        theirs, T.c.status == Status.CREATED.value))).all()
    for row in unsent:  # never sent now: there is nobody to send it to
        publish_status(session, settings, dict(row._mapping), Status.TECHNICAL_FAILURE,
                       Status.CREATED.value, now)
    if unsent:
        await session.execute(sa.update(T).where(T.c.id.in_([r.id for r in unsent])).values(
            status=Status.TECHNICAL_FAILURE.value, completed_at=now, updated_at=now,
            last_error=NOT_SENT))
    redacted = (await session.execute(  # the subject id goes too (retention keeps it)
        sa.update(T).where(theirs).values(
            **REDACTED, citizen_id=None, updated_at=now,
            redacted_at=sa.func.coalesce(T.c.redacted_at, now)))
    ).rowcount  # type: ignore[attr-defined]
    await session.execute(sa.delete(Consent).where(
        Consent.citizen_id == citizen_id))  # type: ignore[arg-type]
    if contact is not None:
        await session.delete(contact)
    await _scrub_webhook_payloads(session, citizen_id)
    log.info("erasure: %d messages redacted", redacted)
    return int(redacted)


def _scrub(value: Any, subject: str) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, subject) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, subject) for v in value if v != subject]
    return None if value == subject else value


async def _scrub_webhook_payloads(session: AsyncSession, subject: str) -> None:
    """Partners' payloads (e.g. ServiceRequestStatusChanged) carry the subject id."""
    rows = (await session.execute(sa.select(W.c.id, W.c.payload).where(
        W.c.payload.contains(json.dumps(subject))))).all()
    for row_id, payload in rows:
        await session.execute(sa.update(W).where(W.c.id == row_id).values(
            payload=json.dumps(_scrub(json.loads(payload), subject))))


async def purge_expired(db: Database, settings: Settings, *,
                        now: datetime | None = None) -> int:
    """Blank every finished message older than the retention period; returns how many."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.content_retention_days)
    final = [s.value for s in FINAL]
    total = 0
    while True:
        async with db.session() as session, session.begin():
            ids = sa.select(T.c.id).where(
                T.c.redacted_at.is_(None), T.c.created_at < cutoff, T.c.status.in_(final)
            ).limit(PURGE_BATCH)
            done = (await session.execute(
                sa.update(T).where(T.c.id.in_(ids.scalar_subquery()),
                                   T.c.redacted_at.is_(None))
                .values(**REDACTED, redacted_at=now))
            ).rowcount  # type: ignore[attr-defined]
        total += done
        if done < PURGE_BATCH:
            break
    if total:
        log.info("retention: %d messages redacted", total)
    return total


class RetentionWorker:
    """Runs :func:`purge_expired` at start-up and then every interval; between runs it
    sleeps (no polling), so an idle service costs nothing."""

    name = "notification-retention"

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
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
                await purge_expired(self.db, self.settings)
            except Exception:
                log.exception("%s: purge failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(),
                                       timeout=self.settings.retention_purge_interval_seconds)
