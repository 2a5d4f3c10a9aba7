"""The delivery workers: send due notifications of one channel and record the outcome.

A worker wakes on every commit (a handler or an API call that created a notification),
waits ``delivery_linger_seconds`` (so a stream of API calls, one commit each, is claimed
in batches, not a transaction pair per message; a backlog is worked through without
waiting), claims a batch by moving it to ``sending`` in one statement (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several replicas share the work), sends concurrently over up to
``delivery_concurrency`` reused connections, then records delivered / retry later /
permanent-failure / technical-failure in one transaction. A message stuck in ``sending``
because its worker died is claimed again after ``sending_reclaim_seconds`` and re-sent with
the same Message-ID (email) or provider reference (SMS).

Simulated notifications (a test API key, or Notify's simulated recipients) go through the
same states but nothing is sent: the outcome follows Notify's test recipients.

Every change of status records a ``NotificationStatusChanged`` in the outbox, in the
transaction that makes the change.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts.notifications import NotificationStatusChanged
from notifications.adapters.email import (
    OutgoingEmail,
    PermanentDeliveryError,
    SmtpSender,
    TemporaryDeliveryError,
)
from notifications.adapters.sms import (
    HttpSmsSender,
    NotifySmsSender,
    OutgoingSms,
    SinkSmsSender,
    SmsSender,
)
from notifications.config import Settings
from notifications.domain import recipients
from notifications.domain.notification import Channel, Status
from notifications.persistence.tables import Notification
from servicekit.db import Database, mark_work
from servicekit.messaging.outbox import record_event
from servicekit.worker import CommitWokenWorker

log = logging.getLogger(__name__)
T = Notification.__table__  # type: ignore[attr-defined]
Row = Mapping[str, Any]
#: (row, final status or None to retry later, error)
Outcome = tuple[Row, Status | None, str | None]
FINAL = frozenset({Status.DELIVERED, Status.PERMANENT_FAILURE, Status.TEMPORARY_FAILURE,
                   Status.TECHNICAL_FAILURE})


def message_id(notification_id: uuid.UUID, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


def status_changed(row: Row, status: Status, previous: str | None,
                   now: datetime) -> NotificationStatusChanged:
    return NotificationStatusChanged(
        notification_id=row["id"], channel=row["channel"], status=status.value,
        previous_status=previous, reference=row.get("reference"),
        notify_service_id=row.get("service_id"), template_id=row.get("template_id"),
        template_version=row.get("template_version"),
        source_event_id=row.get("source_event_id"), occurred_at=now)


def publish_status(session: AsyncSession, settings: Settings, row: Row, status: Status,
                   previous: str | None, now: datetime) -> None:
    record_event(session, status_changed(row, status, previous, now),
                 source=settings.cloudevents_source)


def simulated_outcome(recipient: str) -> Status:
    """Notify's test recipients: temporary / permanent failure; anyone else: delivered."""
    if recipient.lower() in (recipients.TEMP_FAIL_EMAIL, recipients.TEMP_FAIL_PHONE):
        return Status.TEMPORARY_FAILURE
    if recipient.lower() in (recipients.PERM_FAIL_EMAIL, recipients.PERM_FAIL_PHONE):
        return Status.PERMANENT_FAILURE
    return Status.DELIVERED


def channel_work(channel: Channel | str) -> str:
    """The work name a commit marks for ``channel``'s delivery worker (``notification.sms``):
    a commit that made only emails due does not wake the SMS worker for an empty claim
    transaction, nor the other way round."""
    return f"{Notification.__tablename__}.{Channel(channel).value}"


def _mark_channels(session: Session, _flush_context: Any, _instances: Any) -> None:
    """ORM notifications added or changed: their channel's worker has work."""
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Notification):
            mark_work(session, channel_work(obj.channel))


def _watch_channels(db: Database) -> None:
    session_class = db.sessionmaker.kw.get("sync_session_class", Session)
    if not event.contains(session_class, "before_flush", _mark_channels):
        event.listen(session_class, "before_flush", _mark_channels)


class DeliveryWorker(CommitWokenWorker):
    """Claims, sends and records the notifications of one channel. Woken by commits that
    marked its channel's work (:func:`channel_work`: ORM notifications are marked by a flush
    hook, Core inserts mark it themselves); anything unmarked is found by the idle poll."""

    channel: Channel = Channel.EMAIL
    name = "delivery"

    def __init__(self, db: Database, settings: Settings) -> None:
        self.wake_on = frozenset({channel_work(self.channel)})
        _watch_channels(db)
        super().__init__(db, idle_seconds=settings.delivery_idle_seconds,
                         linger_seconds=settings.delivery_linger_seconds)
        self.settings = settings

    async def run_once(self) -> int:
        """Work through what is due, a batch at a time, pipelined: while a full batch is
        being sent the next one is claimed and its messages queue for the connections
        behind the batch's own, and a batch's outcomes are recorded while the next is sent,
        so the SMTP connections are not idle during the claim and record transactions, nor
        at the tail of a batch (measured: they were most of the gap between the service's
        delivery rate and a bare SMTP loop's). At most two batches are in hand. Batches
        touch different notifications, and each notification's own events (sending, then
        its outcome) are still committed in order.

        Returns 0: a batch that was not full took everything due, so the worker waits for
        the next commit (or the idle poll) instead of a pass that claims nothing."""
        size = self.settings.delivery_batch_size
        in_flight: list[asyncio.Future[Any]] = []

        def attempts(batch: list[Row]) -> asyncio.Future[list[Outcome]]:
            sending = asyncio.gather(*(self._attempt(row) for row in batch))
            in_flight.append(sending)
            return sending

        recording: asyncio.Future[None] | None = None
        try:
            batch = await self._claim()
            current = attempts(batch) if batch else None
            while current is not None:
                following: asyncio.Future[list[Outcome]] | None = None
                if len(batch) >= size and not self._stopping:
                    try:
                        batch = await self._claim()
                    except Exception as exc:  # still record the batch being sent
                        log.warning("%s delivery: claim failed (%s), the pass ends",
                                    self.channel.value, type(exc).__name__)
                        batch = []
                    following = attempts(batch) if batch else None
                results = await current
                if recording is not None:
                    await recording  # one batch's record in flight at a time
                recording = asyncio.ensure_future(self._record(results))
                in_flight.append(recording)
                current = following
            await recording if recording is not None else None
        finally:
            # after a failure: let what is in flight finish (a batch claimed but not sent
            # stays "sending" and is claimed again after sending_reclaim_seconds)
            pending = [f for f in in_flight if not f.done()]
            if pending:
                await asyncio.wait(pending)
            for f in in_flight:  # logged here; the first failure is what propagates
                if f.done() and not f.cancelled() and f.exception() is not None:
                    log.warning("%s delivery: %s in a pipelined batch", self.channel.value,
                                type(f.exception()).__name__)
        return 0

    async def deliver_due(self) -> int:
        """Claim and send one batch; returns how many were claimed."""
        batch = await self._claim()
        if not batch:
            return 0
        results = await asyncio.gather(*(self._attempt(row) for row in batch))
        await self._record(results)
        return len(batch)

    async def _claim(self) -> list[Row]:
        now = datetime.now(UTC)
        stale = now - timedelta(seconds=self.settings.sending_reclaim_seconds)
        due = sa.or_(
            sa.and_(T.c.status == Status.CREATED.value,
                    sa.or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now)),
            sa.and_(T.c.status == Status.SENDING.value, T.c.claimed_at < stale),
        )
        pick = (sa.select(T.c.id).where(T.c.channel == self.channel.value, due)
                .order_by(T.c.created_at).limit(self.settings.delivery_batch_size))
        if self.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (sa.update(T).where(T.c.id.in_(pick.scalar_subquery()), due)
                .values(status=Status.SENDING.value, claimed_at=now, updated_at=now,
                        attempts=T.c.attempts + 1)
                .returning(*T.c))
        async with self.db.session() as session, session.begin():
            rows: list[Row] = [dict(r._mapping) for r in (await session.execute(stmt)).all()]
            for row in rows:
                if row["attempts"] == 1:  # a re-claim or a retry is still "sending"
                    publish_status(session, self.settings, row, Status.SENDING,
                                   Status.CREATED.value, now)
            return rows

    async def _attempt(self, row: Row) -> Outcome:
        if row["simulated"]:
            return row, simulated_outcome(row["recipient"]), None
        try:
            await self.send(row)
            return row, Status.DELIVERED, None
        except PermanentDeliveryError as exc:
            return row, Status.PERMANENT_FAILURE, str(exc)
        except TemporaryDeliveryError as exc:
            return row, None, str(exc)  # None: retry later

    async def send(self, row: Row) -> None:
        raise NotImplementedError

    async def _record(self, results: list[Outcome]) -> None:
        now = datetime.now(UTC)
        max_attempts = self.settings.delivery_max_attempts
        async with self.db.session() as session, session.begin():
            delivered = [row["id"] for row, status, _ in results if status is Status.DELIVERED]
            if delivered:
                await session.execute(
                    sa.update(T).where(T.c.id.in_(delivered))
                    .values(status=Status.DELIVERED.value, sent_at=now, completed_at=now,
                            updated_at=now))
            for row, status, error in results:
                if status is None:  # retry later, unless out of attempts
                    given_up = row["attempts"] >= max_attempts
                    await session.execute(
                        sa.update(T).where(T.c.id == row["id"]).values(
                            status=(Status.TECHNICAL_FAILURE if given_up
                                    else Status.CREATED).value,
                            completed_at=now if given_up else None,
                            next_attempt_at=now + _backoff(row["attempts"]), updated_at=now,
                            last_error=(error or "")[:500]))
                    if given_up:
                        publish_status(session, self.settings, row, Status.TECHNICAL_FAILURE,
                                       Status.SENDING.value, now)
                    else:
                        self.wake_in(_backoff(row["attempts"]).total_seconds())
                    continue
                if status is not Status.DELIVERED:
                    await session.execute(
                        sa.update(T).where(T.c.id == row["id"]).values(
                            status=status.value, updated_at=now, completed_at=now,
                            last_error=(error or "")[:500] or None))
                publish_status(session, self.settings, row, status, Status.SENDING.value, now)
        failures = len(results) - len(delivered)
        log.debug("%s delivery: %d delivered, %d not yet", self.channel.value, len(delivered),
                  failures)


def unsubscribe_headers(url: str | None) -> tuple[tuple[str, str], ...]:
    """RFC 8058 one-click unsubscribe: a POST to ``url`` unsubscribes, no questions asked."""
    if not url:
        return ()
    return (("List-Unsubscribe", f"<{url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))


class EmailDeliveryWorker(DeliveryWorker):
    channel = Channel.EMAIL
    name = "email-delivery"

    def __init__(self, db: Database, settings: Settings, sender: SmtpSender | None = None) -> None:
        super().__init__(db, settings)
        self.sender = sender or SmtpSender(settings, pool_size=settings.delivery_concurrency)

    async def send(self, row: Row) -> None:
        await self.sender.send(OutgoingEmail(
            message_id=message_id(row["id"], self.settings.message_id_domain),
            to=row["recipient"], subject=row["subject"] or "",
            text=row["text_body"] or row["body"], html=row["html_body"],
            headers=unsubscribe_headers(row["unsubscribe_url"])))

    async def close(self) -> None:
        await self.sender.close()


def sms_sender_for(settings: Settings) -> SmsSender:
    if settings.sms_provider == "http":
        if not settings.sms_http_url:
            raise ValueError("NOTIFICATIONS_SMS_HTTP_URL is required with the http provider")
        token = settings.sms_http_token.get_secret_value() if settings.sms_http_token else None
        return HttpSmsSender(settings.sms_http_url, token)
    if settings.sms_provider == "notify":
        if not (settings.sms_notify_api_key and settings.sms_notify_template_id):
            raise ValueError("NOTIFICATIONS_SMS_NOTIFY_API_KEY and _TEMPLATE_ID are required "
                             "with the notify provider")
        return NotifySmsSender(settings.sms_notify_api_key.get_secret_value(),
                               settings.sms_notify_template_id,
                               base_url=settings.sms_notify_base_url)
    return SinkSmsSender(settings.sms_sink_dir)


class SmsDeliveryWorker(DeliveryWorker):
    channel = Channel.SMS
    name = "sms-delivery"

    def __init__(self, db: Database, settings: Settings, sender: SmsSender | None = None) -> None:
        super().__init__(db, settings)
        self.sender = sender or sms_sender_for(settings)

    async def send(self, row: Row) -> None:
        await self.sender.send(OutgoingSms(
            notification_id=str(row["id"]), to=row["recipient"],
            sender=self.settings.sms_sender, body=row["body"]))

    async def close(self) -> None:
        await self.sender.close()


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** attempts))
