"""The email delivery worker against real SMTP servers, on SQLite and PostgreSQL:
delivered, retried later, given up on, re-claimed after a crash, refused for good."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlmodel import col

from mkinfra.smtp_sink import SmtpSink
from notifications.application.delivery import EmailDeliveryWorker, SmsDeliveryWorker
from notifications.config import Settings
from notifications.domain.notification import Channel
from notifications.persistence.notifications import channel_work
from notifications.persistence.tables import Notification
from servicekit.db import Database, mark_work
from servicekit.telemetry import JsonFormatter
from servicekit.testing import free_port

RECIPIENT = "resident.one@example.com"
DOMAIN = "notifications.test.example"


def settings_for(port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        environment="test",
        messaging_enabled=False,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout_seconds=5,
        message_id_domain=DOMAIN,
        mail_from="MK Council <no-reply@notifications.test.example>",
    )
    values.update(overrides)
    return Settings(**values)


async def add_notification(db: Database, **overrides: Any) -> uuid.UUID:
    now = datetime.now(UTC)
    values: dict[str, Any] = dict(
        channel="email",
        recipient=RECIPIENT,
        subject="Your library card",
        body="Ready to collect.\n",
        status="created",
        created_at=now,
        updated_at=now,
    )
    values.update(overrides)
    row = Notification(**values)
    async with db.session() as s:
        s.add(row)
        await s.commit()
    return row.id


async def get(db: Database, notification_id: uuid.UUID) -> Notification:
    async with db.session() as s:
        row = await s.get(Notification, notification_id)
        assert row is not None
        return row


def aware(value: datetime | None) -> datetime:
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


@pytest.fixture
def closed_port() -> int:
    return free_port()  # nothing listens there


class RefusingHandler:
    """An SMTP server that refuses every recipient with the given reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.data_received = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        return self.reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_received += 1
        return "250 OK"


@pytest.fixture
def refusing_smtp() -> Iterator[tuple[int, RefusingHandler]]:
    handler = RefusingHandler("550 5.1.1 <mailbox> does not exist")
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    try:
        yield controller.port, handler
    finally:
        controller.stop()


async def test_due_email_is_sent_and_marked_delivered(db: Database, smtp_sink: SmtpSink) -> None:
    settings = settings_for(smtp_sink.port)
    nid = await add_notification(db)
    worker = EmailDeliveryWorker(db, settings)
    try:
        before = datetime.now(UTC)
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0  # nothing left
    finally:
        await worker.stop()

    [email] = smtp_sink.messages()
    assert email["From"] == settings.mail_from
    assert parseaddr(str(email["From"]))[1] == "no-reply@notifications.test.example"
    assert email["To"] == RECIPIENT
    assert email["Subject"] == "Your library card"
    assert email["Message-ID"] == f"<{nid}@{DOMAIN}>"
    assert email["Date"]
    assert email.get_body(("plain",)).get_content().splitlines() == ["Ready to collect."]
    assert smtp_sink.paths()[0].name == f"{nid}@{DOMAIN}.eml"

    row = await get(db, nid)
    assert row.status == "delivered"
    assert row.attempts == 1
    assert aware(row.sent_at) >= before - timedelta(seconds=1)
    assert row.last_error is None


async def test_many_due_emails_go_in_one_pass(db: Database, smtp_sink: SmtpSink) -> None:
    ids = [await add_notification(db, subject=f"Message {n}") for n in range(12)]
    worker = EmailDeliveryWorker(db, settings_for(smtp_sink.port, delivery_concurrency=4))
    try:
        assert await worker.deliver_due() == 12
    finally:
        await worker.stop()
    assert sorted(str(m["Message-ID"]) for m in smtp_sink.messages()) == sorted(
        f"<{i}@{DOMAIN}>" for i in ids
    )
    assert {(await get(db, i)).status for i in ids} == {"delivered"}


async def test_unreachable_server_means_retry_later(db: Database, closed_port: int) -> None:
    nid = await add_notification(db)
    worker = EmailDeliveryWorker(db, settings_for(closed_port))
    try:
        started = datetime.now(UTC)
        assert await worker.deliver_due() == 1
        row = await get(db, nid)
        assert row.status == "created"
        assert row.attempts == 1
        assert row.sent_at is None
        assert aware(row.next_attempt_at) > started
        assert row.last_error
        # not due yet: the next pass leaves it alone
        assert await worker.deliver_due() == 0
        assert (await get(db, nid)).attempts == 1
    finally:
        await worker.stop()


async def test_after_max_attempts_it_is_a_technical_failure(db: Database, closed_port: int) -> None:
    nid = await add_notification(db)
    worker = EmailDeliveryWorker(db, settings_for(closed_port, delivery_max_attempts=3))
    try:
        for attempt in (1, 2, 3):
            assert await worker.deliver_due() == 1, attempt
            row = await get(db, nid)
            assert row.attempts == attempt
            assert row.status == ("technical-failure" if attempt == 3 else "created")
            async with db.session() as s:  # make it due again without waiting the backoff
                await s.execute(
                    sa.update(Notification)
                    .where(Notification.id == nid)
                    .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
                )
                await s.commit()
        assert await worker.deliver_due() == 0  # given up: never claimed again
        row = await get(db, nid)
        assert row.status == "technical-failure"
        assert row.attempts == 3
        assert row.sent_at is None
    finally:
        await worker.stop()


async def test_a_row_left_in_sending_by_a_dead_worker_is_reclaimed_and_sent(
    db: Database, smtp_sink: SmtpSink
) -> None:
    now = datetime.now(UTC)
    stale = await add_notification(
        db, status="sending", attempts=1, subject="Stale", claimed_at=now - timedelta(seconds=300)
    )
    fresh = await add_notification(
        db, status="sending", attempts=1, subject="In hand", claimed_at=now - timedelta(seconds=5)
    )
    worker = EmailDeliveryWorker(db, settings_for(smtp_sink.port, sending_reclaim_seconds=60))
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.stop()
    [email] = smtp_sink.messages()
    assert email["Subject"] == "Stale"
    assert email["Message-ID"] == f"<{stale}@{DOMAIN}>"  # the same id as the first try
    row = await get(db, stale)
    assert row.status == "delivered"
    assert row.attempts == 2
    # another worker is still within its time on this one: left alone
    row = await get(db, fresh)
    assert row.status == "sending"
    assert row.attempts == 1


async def test_permanent_refusal_is_a_permanent_failure(
    db: Database, refusing_smtp: tuple[int, RefusingHandler]
) -> None:
    port, handler = refusing_smtp
    nid = await add_notification(db)
    worker = EmailDeliveryWorker(db, settings_for(port))
    try:
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0  # not retried
    finally:
        await worker.stop()
    row = await get(db, nid)
    assert row.status == "permanent-failure"
    assert row.attempts == 1
    assert row.sent_at is None
    assert row.last_error and "550" in row.last_error
    assert RECIPIENT not in row.last_error
    assert handler.data_received == 0


async def test_temporary_refusal_is_retried_later(db: Database) -> None:
    handler = RefusingHandler("450 4.2.1 mailbox busy, try later")
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    nid = await add_notification(db)
    worker = EmailDeliveryWorker(db, settings_for(controller.port))
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.stop()
        controller.stop()
    row = await get(db, nid)
    assert row.status == "created"
    assert row.attempts == 1
    assert row.next_attempt_at is not None


async def test_delivery_logs_never_contain_the_recipient(
    db: Database,
    smtp_sink: SmtpSink,
    closed_port: int,
    refusing_smtp: tuple[int, RefusingHandler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for port in (smtp_sink.port, closed_port, refusing_smtp[0]):
        await add_notification(db)
        worker = EmailDeliveryWorker(db, settings_for(port))
        try:
            await worker.deliver_due()
        finally:
            await worker.stop()
    ours = [r for r in caplog.records if r.name.startswith("notifications.")]
    assert any(r.name == "notifications.application.delivery" for r in ours), (
        "the delivery module logged nothing at all"
    )
    for rec in ours:
        text = rec.getMessage() + " " + " ".join(map(str, rec.__dict__.values()))
        assert "resident.one" not in text, (rec.name, rec.getMessage())
    # Whatever other libraries log (aiosqlite logs SQL parameters at DEBUG), the service's
    # JSON log lines are scrubbed.
    formatter = JsonFormatter("notifications")
    for rec in caplog.records:
        assert "resident.one" not in formatter.format(rec), rec.name


class SlowHandler:
    """An SMTP server that takes its time over each message (a slow relay)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.seconds)
        self.received += 1
        return "250 OK"


async def test_the_next_batch_is_claimed_while_one_is_sent_and_each_goes_once(db: Database) -> None:
    """The worker's pass is pipelined: while a full batch is with the SMTP server the next
    one is already claimed (its claim transaction does not leave the connections idle),
    and every message still goes exactly once, recorded delivered."""
    handler = SlowHandler(0.4)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    ids = [await add_notification(db, subject=f"Message {n}") for n in range(5)]
    worker = EmailDeliveryWorker(
        db, settings_for(controller.port, delivery_batch_size=2, delivery_concurrency=2)
    )
    sending = 0
    try:
        run = asyncio.ensure_future(worker.run_once())
        while handler.received == 0 and not run.done():  # the first batch is being sent
            async with db.read_session() as s:
                count = (
                    await s.execute(
                        sa.select(sa.func.count())
                        .select_from(Notification)
                        .where(col(Notification.status) == "sending")
                    )
                ).scalar_one()
            sending = max(sending, count)
            await asyncio.sleep(0.02)
        assert await run == 0  # a batch that was not full ended the pass
    finally:
        await worker.stop()
        controller.stop()
    assert sending >= 4  # the first batch and the next, claimed ahead (one at a time: 2)
    assert handler.received == 5
    for i in ids:
        row = await get(db, i)
        assert (row.status, row.attempts) == ("delivered", 1)


async def test_a_commit_wakes_only_the_worker_of_its_channel(db: Database) -> None:
    """An email made due wakes the email worker, not the SMS worker (whose pass would be an
    empty claim transaction), and the other way round; the Notify API's Core insert too."""
    settings = settings_for(free_port())
    email, sms = EmailDeliveryWorker(db, settings), SmsDeliveryWorker(db, settings)
    email._loop = sms._loop = asyncio.get_running_loop()  # woken, not started: no passes
    try:
        await add_notification(db)  # an ORM insert, channel email
        await asyncio.sleep(0)  # the wake is scheduled on the loop
        assert (email._wake.is_set(), sms._wake.is_set()) == (True, False)
        email._wake.clear()
        await add_notification(db, channel="sms", recipient="+447700900123", subject=None)
        await asyncio.sleep(0)
        assert (email._wake.is_set(), sms._wake.is_set()) == (False, True)
        sms._wake.clear()
        async with db.session() as s:  # a Core insert marks its channel itself
            await s.execute(
                sa.insert(Notification),
                {
                    "id": uuid.uuid4(),
                    "channel": "email",
                    "recipient": RECIPIENT,
                    "body": "x",
                    "status": "created",
                    "created_at": datetime.now(UTC),
                    "updated_at": datetime.now(UTC),
                },
            )
            mark_work(s, channel_work(Channel.EMAIL))
            await s.commit()
        await asyncio.sleep(0)
        assert (email._wake.is_set(), sms._wake.is_set()) == (True, False)
    finally:
        await email.stop()
        await sms.stop()
