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
from notifications.application.notify_callbacks import queue_delivery_receipts
from notifications.config import Settings
from notifications.domain import recipients
from notifications.domain.notification import Channel, Status, status_changed
from notifications.persistence.notifications import (
    NotificationRepository,
    channel_work,
    watch_channels,
)
from notifications.persistence.notify_callbacks import NotifyCallbackRepository
from notifications.persistence.tables import Notification
from servicekit.db import Database
from servicekit.metrics import ServiceMetrics
from servicekit.uow import UnitOfWork
from servicekit.worker import CommitWokenWorker

log = logging.getLogger(__name__)
Row = Mapping[str, Any]
#: (row, final status or None to retry later, error)
Outcome = tuple[Row, Status | None, str | None]


def message_id(notification_id: uuid.UUID, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


def simulated_outcome(recipient: str) -> Status:
    """Notify's test recipients: temporary / permanent failure; anyone else: delivered."""
    if recipient.lower() in (recipients.TEMP_FAIL_EMAIL, recipients.TEMP_FAIL_PHONE):
        return Status.TEMPORARY_FAILURE
    if recipient.lower() in (recipients.PERM_FAIL_EMAIL, recipients.PERM_FAIL_PHONE):
        return Status.PERMANENT_FAILURE
    return Status.DELIVERED


def queue(
    uow: UnitOfWork, notifications: NotificationRepository, notification: Notification
) -> None:
    """A new (``created``) notification for its channel's worker, and its first event, in
    the transaction of ``uow``."""
    notifications.add(notification)
    uow.publish(
        status_changed(notification.model_dump(), Status.CREATED, None, notification.created_at)
    )


async def claim(
    uow: UnitOfWork,
    notifications: NotificationRepository,
    channel: Channel,
    *,
    now: datetime,
    settings: Settings,
) -> list[Row]:
    """Claim a batch of ``channel``'s due notifications (moved to ``sending``); the first
    claim of each records its ``sending`` (a re-claim or a retry is still "sending")."""
    rows = await notifications.claim_due(
        channel,
        now=now,
        stale=now - timedelta(seconds=settings.sending_reclaim_seconds),
        limit=settings.delivery_batch_size,
    )
    for row in rows:
        if row["attempts"] == 1:
            uow.publish(status_changed(row, Status.SENDING, Status.CREATED.value, now))
    return list(rows)


async def record(
    uow: UnitOfWork,
    notifications: NotificationRepository,
    results: list[Outcome],
    *,
    now: datetime,
    max_attempts: int,
) -> list[float]:
    """Record the outcomes of a batch (delivered, retry later or given up, failed) and their
    events; returns the delays (seconds) after which retries fall due."""
    retries: list[float] = []
    delivered = [row["id"] for row, status, _ in results if status is Status.DELIVERED]
    if delivered:
        await notifications.mark_delivered(delivered, now)
    for row, status, error in results:
        if status is None:  # retry later, unless out of attempts
            given_up = row["attempts"] >= max_attempts
            await notifications.update(
                row["id"],
                status=(Status.TECHNICAL_FAILURE if given_up else Status.CREATED).value,
                completed_at=now if given_up else None,
                next_attempt_at=now + _backoff(row["attempts"]),
                updated_at=now,
                last_error=(error or "")[:500],
            )
            if given_up:
                uow.publish(
                    status_changed(row, Status.TECHNICAL_FAILURE, Status.SENDING.value, now)
                )
            else:
                retries.append(_backoff(row["attempts"]).total_seconds())
            continue
        if status is not Status.DELIVERED:
            await notifications.update(
                row["id"],
                status=status.value,
                updated_at=now,
                completed_at=now,
                last_error=(error or "")[:500] or None,
            )
        uow.publish(status_changed(row, status, Status.SENDING.value, now))
    return retries


class PacedWorker(CommitWokenWorker):
    """A worker of this service, paced by its delivery settings: it lingers
    ``delivery_linger_seconds`` after a commit wakes it, and polls every
    ``delivery_idle_seconds`` when none does."""

    #: Set by ``notifications.main.workers``: attempts counted in
    #: ``notification_deliveries_total{channel,outcome}`` (the delivery failure rate alert).
    metrics: ServiceMetrics | None = None

    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(
            database,
            idle_seconds=settings.delivery_idle_seconds,
            linger_seconds=settings.delivery_linger_seconds,
        )
        self.settings = settings


class DeliveryWorker(PacedWorker):
    """Claims, sends and records the notifications of one channel. Woken by commits that
    marked its channel's work (:func:`channel_work`: ORM notifications are marked by a flush
    hook, Core inserts mark it themselves); anything unmarked is found by the idle poll."""

    channel: Channel = Channel.EMAIL
    name = "delivery"

    def __init__(self, database: Database, settings: Settings) -> None:
        self.wake_on = frozenset({channel_work(self.channel)})
        watch_channels(database)
        super().__init__(database, settings)

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
                        log.warning(
                            "%s delivery: claim failed (%s), the pass ends",
                            self.channel.value,
                            type(exc).__name__,
                        )
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
                    log.warning(
                        "%s delivery: %s in a pipelined batch",
                        self.channel.value,
                        type(f.exception()).__name__,
                    )
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
        async with UnitOfWork(self.database, source=self.settings.cloudevents_source) as uow:
            return await claim(
                uow,
                NotificationRepository(uow.db),
                self.channel,
                now=datetime.now(UTC),
                settings=self.settings,
            )

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
        finished = [
            (row, status if status is not None else Status.TECHNICAL_FAILURE)
            for row, status, _ in results
            if status is not None or row["attempts"] >= max_attempts
        ]
        async with UnitOfWork(self.database, source=self.settings.cloudevents_source) as uow:
            retries = await record(
                uow,
                NotificationRepository(uow.db),
                results,
                now=now,
                max_attempts=max_attempts,
            )
            # Notify's delivery receipts, in the same transaction as the statuses
            await queue_delivery_receipts(NotifyCallbackRepository(uow.db), finished, now=now)
        for seconds in retries:
            self.wake_in(seconds)
        if self.metrics:
            max_attempts = self.settings.delivery_max_attempts
            for row, status, _ in results:
                outcome = (
                    status.value
                    if status is not None
                    else "technical-failure"
                    if row["attempts"] >= max_attempts
                    else "retry"
                )
                self.metrics.deliveries.labels(self.channel.value, outcome).inc()
        delivered = sum(1 for _, status, _ in results if status is Status.DELIVERED)
        log.debug(
            "%s delivery: %d delivered, %d not yet",
            self.channel.value,
            delivered,
            len(results) - delivered,
        )


def unsubscribe_headers(url: str | None) -> tuple[tuple[str, str], ...]:
    """RFC 8058 one-click unsubscribe: a POST to ``url`` unsubscribes, no questions asked."""
    if not url:
        return ()
    return (
        ("List-Unsubscribe", f"<{url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


class EmailDeliveryWorker(DeliveryWorker):
    channel = Channel.EMAIL
    name = "email-delivery"

    def __init__(
        self, database: Database, settings: Settings, sender: SmtpSender | None = None
    ) -> None:
        super().__init__(database, settings)
        self.sender = sender or SmtpSender(settings, pool_size=settings.delivery_concurrency)

    async def send(self, row: Row) -> None:
        await self.sender.send(
            OutgoingEmail(
                message_id=message_id(row["id"], self.settings.message_id_domain),
                to=row["recipient"],
                subject=row["subject"] or "",
                text=row["text_body"] or row["body"],
                html=row["html_body"],
                headers=(
                    *unsubscribe_headers(row["unsubscribe_url"]),
                    *((("Reply-To", row["sender"]),) if row.get("sender") else ()),
                ),
            )
        )

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
            raise ValueError(
                "NOTIFICATIONS_SMS_NOTIFY_API_KEY and _TEMPLATE_ID are required "
                "with the notify provider"
            )
        return NotifySmsSender(
            settings.sms_notify_api_key.get_secret_value(),
            settings.sms_notify_template_id,
            base_url=settings.sms_notify_base_url,
        )
    return SinkSmsSender(settings.sms_sink_dir)


class SmsDeliveryWorker(DeliveryWorker):
    channel = Channel.SMS
    name = "sms-delivery"

    def __init__(
        self, database: Database, settings: Settings, sender: SmsSender | None = None
    ) -> None:
        super().__init__(database, settings)
        self.sender = sender or sms_sender_for(settings)

    async def send(self, row: Row) -> None:
        await self.sender.send(
            OutgoingSms(
                notification_id=str(row["id"]),
                to=row["recipient"],
                sender=row.get("sender") or self.settings.sms_sender,
                body=row["body"],
            )
        )

    async def close(self) -> None:
        await self.sender.close()


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2**attempts))
