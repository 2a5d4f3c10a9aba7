"""The delivery worker: sends due email notifications and records the outcome.

It wakes on every commit (a handler that created a notification), claims a batch by
moving it to ``sending`` in one statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several replicas share the work), sends concurrently, then records delivered / retry later /
permanent-failure / technical-failure. A message stuck in ``sending`` because its worker died
is claimed again after ``sending_reclaim_seconds`` and re-sent with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from notifications.adapters.email import (
    OutgoingEmail,
    PermanentDeliveryError,
    SmtpSender,
    TemporaryDeliveryError,
)
from notifications.config import Settings
from notifications.domain.notification import Channel, Status
from notifications.persistence.tables import Notification
from servicekit.db import Database

log = logging.getLogger(__name__)
T = Notification.__table__  # type: ignore[attr-defined]
#: (notification id, final status or None to retry later, error, attempts so far)
Outcome = tuple[uuid.UUID, Status | None, str | None, int]


def message_id(notification_id: uuid.UUID, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


class EmailDeliveryWorker:
    def __init__(self, db: Database, settings: Settings, sender: SmtpSender | None = None) -> None:
        self.db = db
        self.settings = settings
        self.sender = sender or SmtpSender(settings, pool_size=settings.delivery_concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe = db.on_commit(self.wake)
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="email-delivery")

    async def stop(self) -> None:
        self._stopping = True
        self._unsubscribe()
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self.sender.close()

    def wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while not self._stopping and await self.deliver_due() > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("email delivery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(),
                                       timeout=self.settings.delivery_idle_seconds)

    async def deliver_due(self) -> int:
        """Claim and send one batch; returns how many were claimed."""
        batch = await self._claim()
        if not batch:
            return 0
        results = await asyncio.gather(*(self._send(row) for row in batch))
        await self._record(results)
        return len(batch)

    async def _claim(self) -> list[sa.Row[tuple[uuid.UUID, str, str | None, str, int]]]:
        now = datetime.now(UTC)
        stale = now - timedelta(seconds=self.settings.sending_reclaim_seconds)
        due = sa.or_(
            sa.and_(T.c.status == Status.CREATED.value,
                    sa.or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now)),
            sa.and_(T.c.status == Status.SENDING.value, T.c.claimed_at < stale),
        )
        pick = (sa.select(T.c.id).where(T.c.channel == Channel.EMAIL.value, due)
                .order_by(T.c.created_at).limit(self.settings.delivery_batch_size))
        if self.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (sa.update(T).where(T.c.id.in_(pick.scalar_subquery()), due)
                .values(status=Status.SENDING.value, claimed_at=now, updated_at=now,
                        attempts=T.c.attempts + 1)
                .returning(T.c.id, T.c.recipient, T.c.subject, T.c.body, T.c.attempts))
        async with self.db.session() as session, session.begin():
            result = await session.execute(stmt)
            return list(result.all())

    async def _send(self, row: sa.Row[tuple[uuid.UUID, str, str | None, str, int]]
                    ) -> Outcome:
        notification_id, recipient, subject, body, attempts = row
        email = OutgoingEmail(
            message_id=message_id(notification_id, self.settings.message_id_domain),
            to=recipient, subject=subject or "", text=body,
        )
        try:
            await self.sender.send(email)
            return notification_id, Status.DELIVERED, None, attempts
        except PermanentDeliveryError as exc:
            return notification_id, Status.PERMANENT_FAILURE, str(exc), attempts
        except TemporaryDeliveryError as exc:
            return notification_id, None, str(exc), attempts  # None: retry later

    async def _record(self, results: list[Outcome]) -> None:
        now = datetime.now(UTC)
        async with self.db.session() as session, session.begin():
            delivered = [nid for nid, status, _, _ in results if status is Status.DELIVERED]
            if delivered:
                await session.execute(
                    sa.update(T).where(T.c.id.in_(delivered))
                    .values(status=Status.DELIVERED.value, sent_at=now, updated_at=now))
            for nid, status, error, attempts in results:
                if status is Status.DELIVERED:
                    continue
                if status is None:
                    await session.execute(
                        sa.update(T).where(T.c.id == nid).values(
                            status=sa.case(
                                (T.c.attempts >= self.settings.delivery_max_attempts,
                                 Status.TECHNICAL_FAILURE.value),
                                else_=Status.CREATED.value),
                            next_attempt_at=now + _backoff(attempts), updated_at=now,
                            last_error=(error or "")[:500]))
                else:
                    await session.execute(
                        sa.update(T).where(T.c.id == nid).values(
                            status=status.value, updated_at=now, last_error=(error or "")[:500]))
        failures = len(results) - len(delivered)
        log.debug("email delivery: %d delivered, %d not yet", len(delivered), failures)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** attempts))
