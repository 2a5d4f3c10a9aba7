"""Privacy in notifications, on SQLite and PostgreSQL: a new contact email is used only once
confirmed through the one-time link sent to it; erasure forgets the citizen's contact
details and blanks their messages (status rows kept), once however often the event comes;
messages older than the retention period are blanked by the purge, newer ones are not."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from contracts import Event
from contracts.citizen_services import ServiceRequestStatusChanged
from contracts.privacy import CitizenErasureRequested
from mkinfra.smtp_sink import SmtpSink
from notifications.application.privacy import RetentionWorker, purge_expired
from notifications.config import Settings
from notifications.main import create_app
from notifications.messaging.subscriptions import SUBSCRIPTIONS
from notifications.persistence.tables import (
    CitizenContact,
    Consent,
    Notification,
    NotifyCallback,
    NotifyFile,
    NotifyReceivedText,
    WebhookDelivery,
    WebhookSubscription,
)
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer
from servicekit.testing import consumer_record, eventually, identity_headers, running_app

LINK = re.compile(r"https://mk\.example(/api/v1/preferences/email-verification\?token=[\w-]+)")


def record(event: Event, offset: int) -> ConsumerRecord:  # type: ignore[type-arg]
    return consumer_record(event, offset, source="urn:uk-gov-milton-keynes:test")


def status_changed(citizen: str) -> ServiceRequestStatusChanged:
    return ServiceRequestStatusChanged(
        request_id=uuid.uuid4(),
        service_code="pothole",
        status="in_progress",
        previous_status="open",
        citizen_id=citizen,
        note="A crew is booked.",
        occurred_at=datetime.now(UTC),
    )


def erasure(citizen: str) -> CitizenErasureRequested:
    return CitizenErasureRequested(
        citizen_id=citizen,
        erasure_id=uuid.uuid4(),
        requested_by="citizen",
        occurred_at=datetime.now(UTC),
    )


def consumer_for(db: Database, settings: Settings) -> EventConsumer:
    return EventConsumer(
        db,
        bootstrap_servers="127.0.0.1:1",
        group_id="notifications",
        subscriptions=SUBSCRIPTIONS,
        settings=settings,
        service_name="notifications",
        source=settings.cloudevents_source,
    )


async def rows(db: Database) -> list[Notification]:
    async with db.session() as s:
        return list(
            (await s.execute(sa.select(Notification).order_by(Notification.created_at)))
            .scalars()
            .all()
        )  # type: ignore[arg-type]


async def test_a_new_email_is_used_only_once_confirmed(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        staff_alert_email=None,
        public_url="https://mk.example",
        delivery_idle_seconds=0.2,
    )
    app = create_app(settings)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        db: Database = app.state.runtime.database
        consumer = consumer_for(db, settings)
        me = identity_headers("c-verify", "citizen")
        put = await http.put(
            "/api/v1/preferences", headers=me, json={"email": "someone.else@example.com"}
        )
        assert put.status_code == 200, put.text
        assert (put.json()["email"], put.json()["email_pending"]) == (
            None,
            "someone.else@example.com",
        )
        again = await http.put(
            "/api/v1/preferences", headers=me, json={"email": "someone.else@example.com"}
        )
        assert again.status_code == 200  # asked again while the link works: no second mail

        async def mail_to(address: str, n: int = 1) -> list[EmailMessage] | None:
            got = [m for m in smtp_sink.messages() if m["To"] == address]
            return got if len(got) >= n else None

        [confirm] = await eventually(lambda: mail_to("someone.else@example.com"), timeout=10)
        assert confirm["Subject"] == "Confirm your email address"
        # Nothing but the link goes to the address until it is confirmed.
        assert await consumer.process(record(status_changed("c-verify"), 1)) == "handled"
        assert [n.subject for n in await rows(db)] == ["Confirm your email address"]

        match = LINK.search(confirm.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        assert match, "no link in the confirmation email"
        path = match.group(1)
        looked = await http.get(path)  # a mail scanner following the link: changes nothing
        assert looked.status_code == 200 and looked.json()["confirmed"] is False
        assert (await http.get("/api/v1/preferences", headers=me)).json()["email"] is None
        done = await http.post(path)
        assert done.status_code == 200 and done.json()["confirmed"] is True, done.text
        prefs = (await http.get("/api/v1/preferences", headers=me)).json()
        assert (prefs["email"], prefs["email_pending"]) == ("someone.else@example.com", None)
        used = await http.post(path)  # one-time
        assert used.status_code == 400
        assert used.headers["content-type"] == "application/problem+json"
        assert (await http.post(path.replace("token=", "token=x"))).status_code == 400

        assert await consumer.process(record(status_changed("c-verify"), 2)) == "handled"
        await eventually(lambda: mail_to("someone.else@example.com", 2), timeout=10)

        # Changing it again: messages keep going to the confirmed address meanwhile.
        await http.put("/api/v1/preferences", headers=me, json={"email": "new@example.com"})
        assert await consumer.process(record(status_changed("c-verify"), 3)) == "handled"
        await eventually(lambda: mail_to("someone.else@example.com", 3), timeout=10)
        sent = [(n.recipient, n.subject) for n in await rows(db)]
        assert [s for s in sent if s[0] == "new@example.com"] == [
            ("new@example.com", "Confirm your email address")
        ]


async def test_erasure_forgets_the_citizen_and_blanks_their_messages(db: Database) -> None:
    settings = Settings(messaging_enabled=False, environment="test", staff_alert_email=None)
    consumer = consumer_for(db, settings)
    now = datetime.now(UTC)
    async with db.session() as s:
        for citizen, email in (("c-gone", "gone@example.com"), ("c-stays", "stays@example.com")):
            s.add(
                CitizenContact(
                    citizen_id=citizen, email=email, phone="+447700900123", updated_at=now
                )
            )
            s.add(
                Consent(
                    citizen_id=citizen,
                    topic="service-requests",
                    channel="sms",
                    granted=True,
                    updated_at=now,
                )
            )
        # a /v2 message to the citizen's address, sent by another council system
        s.add(
            Notification(
                channel="email",
                recipient="gone@example.com",
                subject="Your bin",
                body="Dear Ann Example, your bin is late.",
                status="delivered",
                created_at=now,
                updated_at=now,
            )
        )
        sub = WebhookSubscription(
            owner="p",
            url="https://93.184.215.14/x",
            event_types="x",
            secret="whsec_x",
            created_at=now,
            updated_at=now,
        )
        s.add(sub)
        await s.flush()
        s.add(
            WebhookDelivery(
                id="msg_1",
                subscription_id=sub.id,
                event_id="e1",
                event_type="x",
                payload=json.dumps({"data": {"citizen_id": "c-gone", "status": "fixed"}}),
                created_at=now,
                updated_at=now,
            )
        )
        await s.commit()
    event = status_changed("c-gone")
    assert await consumer.process(record(event, 1)) == "handled"  # an email and an SMS (held
    assert await consumer.process(record(status_changed("c-stays"), 2)) == "handled"  # or not)
    before = await rows(db)
    assert len([n for n in before if n.recipient == "gone@example.com"]) == 2

    gone = record(erasure("c-gone"), 3)
    assert await consumer.process(gone) == "handled"
    assert await consumer.process(gone) == "duplicate"
    assert await consumer.process(record(erasure("c-gone"), 4)) == "handled"  # a second request
    after = {n.id: n for n in await rows(db)}
    assert set(after) == {n.id for n in before}  # every status row is kept
    theirs = [n for n in before if n.citizen_id == "c-gone" or n.recipient == "gone@example.com"]
    assert len(theirs) == 3
    for n in theirs:
        kept = after[n.id]
        assert (
            kept.recipient,
            kept.subject,
            kept.body,
            kept.html_body,
            kept.text_body,
            kept.unsubscribe_url,
        ) == (None, None, "", None, None, None)
        assert kept.redacted_at is not None and kept.channel == n.channel
        assert kept.status != "created"  # an unsent one is never sent now
    others = [after[n.id] for n in before if n not in theirs]
    assert others and all(n.recipient and n.body and n.redacted_at is None for n in others)
    async with db.session() as s:
        assert await s.get(CitizenContact, "c-gone") is None
        assert await s.get(CitizenContact, "c-stays") is not None
        consents = (await s.execute(sa.select(Consent.citizen_id))).scalars().all()
        assert consents == ["c-stays"]
        payload = (await s.get(WebhookDelivery, "msg_1")).payload  # type: ignore[union-attr]
        assert "c-gone" not in payload and "fixed" in payload
        dump = " ".join(repr(tuple(r)) for r in (await s.execute(sa.select(Notification))).all())
    for personal in ("gone@example.com", "Ann Example", "c-gone"):
        assert personal not in dump, personal
    # Nothing more for the erased citizen: no contact details are left to send to.
    assert await consumer.process(record(status_changed("c-gone"), 5)) == "handled"
    assert len(await rows(db)) == len(before)


async def test_erasure_reaches_notifys_files_received_texts_and_callbacks(
    db: Database,
) -> None:
    """A file sent by email with the citizen's message, the texts they sent to a council
    number and the callbacks naming them go; another citizen's stay."""
    settings = Settings(messaging_enabled=False, environment="test", staff_alert_email=None)
    consumer = consumer_for(db, settings)
    now = datetime.now(UTC)
    service = uuid.uuid4()
    people = {
        "c-gone": ("gone@example.com", "+447700900111"),
        "c-stays": ("stays@example.com", "+447700900222"),
    }
    messages: dict[str, uuid.UUID] = {}
    async with db.session() as s:
        for citizen, (email, phone) in people.items():
            s.add(CitizenContact(citizen_id=citizen, email=email, phone=phone, updated_at=now))
            message = Notification(
                channel="email",
                recipient=email,
                subject="Your document",
                body="Download it here",
                status="delivered",
                created_at=now,
                updated_at=now,
            )
            s.add(message)
            await s.flush()
            messages[citizen] = message.id
            s.add(
                NotifyFile(
                    service_id=service,
                    notification_id=message.id,
                    key_hash="0" * 64,
                    filename=f"{citizen}.pdf",
                    mimetype="application/pdf",
                    content=b"%PDF-1.4 " + citizen.encode(),
                    size=16,
                    created_at=now,
                    expires_at=now + timedelta(days=7),
                )
            )
            s.add(
                NotifyReceivedText(
                    service_id=service,
                    user_number=phone,
                    notify_number="07700900000",
                    content=f"STOP, says {citizen}",
                    created_at=now,
                )
            )
            for kind, payload in (
                ("delivery-status", {"id": str(message.id), "to": email, "status": "delivered"}),
                (
                    "received-text",
                    {
                        "id": str(uuid.uuid4()),
                        "source_number": phone.lstrip("+"),
                        "message": "STOP",
                    },
                ),
            ):
                s.add(
                    NotifyCallback(
                        service_id=service,
                        kind=kind,
                        payload=json.dumps(payload),
                        created_at=now,
                        updated_at=now,
                    )
                )
        await s.commit()

    assert await consumer.process(record(erasure("c-gone"), 1)) == "handled"

    async with db.session() as s:
        files = {f.notification_id for f in (await s.execute(sa.select(NotifyFile))).scalars()}
        assert files == {messages["c-stays"]}
        texts = [t.user_number for t in (await s.execute(sa.select(NotifyReceivedText))).scalars()]
        assert texts == ["+447700900222"]
        callbacks = [
            (c.kind, json.loads(c.payload))
            for c in (await s.execute(sa.select(NotifyCallback))).scalars()
        ]
    receipts = {p["id"]: p for kind, p in callbacks if kind == "delivery-status"}
    assert receipts[str(messages["c-gone"])]["to"] is None  # the status stays, not the address
    assert receipts[str(messages["c-gone"])]["status"] == "delivered"
    assert receipts[str(messages["c-stays"])]["to"] == "stays@example.com"
    assert [p["source_number"] for kind, p in callbacks if kind == "received-text"] == [
        "447700900222"
    ]


async def test_content_older_than_the_retention_period_is_blanked(db: Database) -> None:
    settings = Settings(
        messaging_enabled=False,
        environment="test",
        staff_alert_email=None,
        content_retention_days=7,
    )
    now = datetime.now(UTC)
    ages = {
        "old-delivered": (8, "delivered"),
        "old-failed": (30, "permanent-failure"),
        "old-but-unsent": (8, "created"),
        "recent": (6, "delivered"),
    }
    ids: dict[str, Any] = {}
    async with db.session() as s:
        for name, (days, status) in ages.items():
            n = Notification(
                channel="email",
                recipient=f"{name}@example.com",
                subject="Hello",
                body="Dear Ann",
                html_body="<p>Dear Ann</p>",
                text_body="Dear Ann",
                status=status,
                reference="ref-1",
                created_at=now - timedelta(days=days),
                updated_at=now,
            )
            s.add(n)
            ids[name] = n.id
        await s.commit()
    assert await purge_expired(db, settings) == 2
    assert await purge_expired(db, settings) == 0  # nothing left to do
    async with db.session() as s:
        got = {name: await s.get(Notification, i) for name, i in ids.items()}
    for name in ("old-delivered", "old-failed"):
        n = got[name]
        assert n is not None
        assert (n.recipient, n.subject, n.body, n.html_body, n.text_body) == (
            None,
            None,
            "",
            None,
            None,
        )
        assert (n.status, n.reference) == (ages[name][1], "ref-1")  # the status row stays
    for name in ("old-but-unsent", "recent"):
        assert got[name] is not None and got[name].recipient == f"{name}@example.com"  # type: ignore[union-attr]

    # The worker purges at start-up, then sleeps until the next interval.
    async with db.session() as s:
        s.add(
            Notification(
                channel="sms",
                recipient="+447700900999",
                body="Hi",
                status="delivered",
                created_at=now - timedelta(days=9),
                updated_at=now,
            )
        )
        await s.commit()
    worker = RetentionWorker(db, settings)
    await worker.start()
    try:

        async def purged() -> bool:
            return all(n.recipient != "+447700900999" for n in await rows(db))

        await eventually(purged, timeout=10)
    finally:
        await worker.stop()
