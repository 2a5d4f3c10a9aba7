"""Event-driven messages to citizens: consent per topic and channel, one message per
(event, recipient, channel), SMS held through quiet hours; and the preferences API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import partial
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from contracts import Envelope
from contracts.citizen_services import ServiceRequestStatusChanged
from mkinfra.smtp_sink import SmtpSink
from notifications.application.messages import send_event_messages
from notifications.config import Settings
from notifications.domain.messages import sms_release_time
from notifications.main import create_app
from notifications.messaging.subscriptions import SUBSCRIPTIONS
from notifications.persistence.tables import CitizenContact, Consent, Notification
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer, Subscriptions
from servicekit.testing import eventually, identity_headers, running_app

LONDON = ZoneInfo("Europe/London")
SOURCE = "urn:uk-gov-milton-keynes:citizen-services"


def subscriptions_at(now: datetime) -> Subscriptions:
    """The service's subscriptions, its messages created at ``now``."""
    return {
        event: [partial(h, clock=lambda: now) if h is send_event_messages else h for h in handlers]
        for event, handlers in SUBSCRIPTIONS.items()
    }


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "release"),
    [
        (london(2026, 11, 26, 12, 0), None),
        (london(2026, 11, 26, 8, 0), None),
        (london(2026, 11, 26, 20, 59), None),
        (london(2026, 11, 26, 21, 0), london(2026, 11, 27, 8, 0)),
        (london(2026, 11, 26, 22, 0), london(2026, 11, 27, 8, 0)),
        (london(2026, 11, 27, 0, 30), london(2026, 11, 27, 8, 0)),
        (london(2026, 11, 27, 7, 59), london(2026, 11, 27, 8, 0)),
        (london(2026, 7, 1, 22, 0), london(2026, 7, 2, 8, 0)),  # BST: 07:00 UTC
        (london(2026, 3, 28, 23, 0), london(2026, 3, 29, 8, 0)),  # the clocks go forward
    ],
)
def test_no_sms_between_21_and_8_london_time(now: datetime, release: datetime | None) -> None:
    assert sms_release_time(now.astimezone(UTC)) == release


def record(event: ServiceRequestStatusChanged, offset: int) -> ConsumerRecord:  # type: ignore[type-arg]
    envelope = Envelope(
        source=SOURCE,
        type=event.event_type(),
        subject=event.aggregate_id,
        dataschema=event.dataschema(),
    )
    value, key = event.to_json(), event.aggregate_id.encode()
    return ConsumerRecord(
        topic=event.topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=envelope.to_headers(),
    )


def status_changed(
    citizen: str | None, *, note: str = "A crew is booked.", visibility: str = "public"
) -> ServiceRequestStatusChanged:
    return ServiceRequestStatusChanged(
        request_id=uuid.uuid4(),
        service_code="pothole",
        status="in_progress",
        previous_status="open",
        citizen_id=citizen,
        note=note,
        note_visibility=visibility,
        occurred_at=datetime.now(UTC),
    )


async def add_citizen(
    db: Database,
    citizen: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    consents: dict[str, bool] | None = None,
) -> None:
    now = datetime.now(UTC)
    async with db.session() as s:
        s.add(CitizenContact(citizen_id=citizen, email=email, phone=phone, updated_at=now))
        for channel, granted in (consents or {}).items():
            s.add(
                Consent(
                    citizen_id=citizen,
                    topic="service-requests",
                    channel=channel,
                    granted=granted,
                    updated_at=now,
                )
            )
        await s.commit()


async def messages(db: Database) -> list[Notification]:
    async with db.session() as s:
        return list(
            (await s.execute(sa.select(Notification).order_by(Notification.channel)))
            .scalars()
            .all()
        )


async def test_consenting_citizen_gets_one_email_and_an_opted_out_one_none(db: Database) -> None:
    settings = Settings(messaging_enabled=False, environment="test", staff_alert_email=None)
    at_night = london(2026, 11, 26, 22, 0).astimezone(UTC)
    consumer = EventConsumer(
        db,
        bootstrap_servers="127.0.0.1:1",
        group_id="notifications",
        subscriptions=subscriptions_at(at_night),
        settings=settings,
        service_name="notifications",
        source=settings.cloudevents_source,
    )
    await add_citizen(
        db, "c-yes", email="yes@example.com", phone="+447700900123", consents={"sms": True}
    )
    await add_citizen(db, "c-no", email="no@example.com", consents={"email": False})
    await add_citizen(db, "c-default", phone="+447700900456")  # SMS is off by default

    event = status_changed("c-yes")
    rec = record(event, 1)
    assert await consumer.process(rec) == "handled"
    assert await consumer.process(rec) == "duplicate"  # redelivered: nothing new
    email, sms = await messages(db)
    assert (email.channel, email.recipient) == ("email", "yes@example.com")
    assert email.subject == f"Your report {str(event.request_id)[:8].upper()} is now in progress"
    assert "Our note: A crew is booked." in (email.text_body or "")
    assert email.next_attempt_at is None
    assert (sms.channel, sms.recipient) == ("sms", "+447700900123")
    assert sms.body.startswith("MK Council: your report")
    assert sms.next_attempt_at == london(2026, 11, 27, 8, 0)  # held until 08:00, not dropped

    for n, citizen in enumerate(("c-no", "c-default", "c-unknown", None), start=2):
        assert await consumer.process(record(status_changed(citizen), n)) == "handled"
    assert len(await messages(db)) == 2

    # An internal note (e.g. safeguarding) is staff's: the citizen's email leaves it out.
    internal = status_changed(
        "c-yes", note="Safeguarding: do not visit alone.", visibility="internal"
    )
    assert await consumer.process(record(internal, 9)) == "handled"
    [latest] = [
        m
        for m in await messages(db)
        if m.channel == "email" and str(internal.request_id)[:8].upper() in (m.subject or "")
    ]
    assert "Safeguarding" not in (latest.text_body or "") + (latest.html_body or "")
    assert "Our note" not in (latest.text_body or "")


async def test_preferences_api(database_url: str) -> None:
    app = create_app(
        Settings(database_url=database_url, messaging_enabled=False, environment="test")
    )
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        me = identity_headers("citizen-77", "citizen")
        got = await http.get("/api/v1/preferences", headers=me)
        assert got.status_code == 200, got.text
        assert got.json()["topics"]["service-requests"] == {
            "description": "Updates on the problems and requests you reported",
            "email": True,
            "sms": False,
        }
        put = await http.put(
            "/api/v1/preferences",
            headers=me,
            json={
                "email": "resident@example.com",
                "phone": "07700 900 777",
                "topics": {"service-requests": {"email": False, "sms": True}},
            },
        )
        assert put.status_code == 200, put.text
        # a new address waits for its confirmation link (test_privacy.py)
        assert (put.json()["email"], put.json()["email_pending"]) == (None, "resident@example.com")
        assert put.json()["phone"] == "+447700900777"
        assert put.json()["topics"]["service-requests"]["sms"] is True
        again = (await http.get("/api/v1/preferences", headers=me)).json()
        assert again == put.json()
        bad = await http.put("/api/v1/preferences", headers=me, json={"phone": "01908 691691"})
        assert bad.status_code == 400
        assert bad.json()["detail"] == "Not a UK mobile number"
        assert (
            await http.put(
                "/api/v1/preferences",
                headers=me,
                json={"topics": {"nope": {"email": True, "sms": True}}},
            )
        ).status_code == 400
        assert (await http.get("/api/v1/preferences")).status_code == 401
        staff = identity_headers("staff-1", "staff")
        assert (await http.get("/api/v1/preferences", headers=staff)).status_code == 403


async def test_one_click_unsubscribe(database_url: str, smtp_sink: SmtpSink) -> None:
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
        consumer = EventConsumer(
            db,
            bootstrap_servers="127.0.0.1:1",
            group_id="notifications",
            subscriptions=SUBSCRIPTIONS,
            settings=settings,
            service_name="notifications",
            source=settings.cloudevents_source,
        )
        await add_citizen(db, "c-1", email="one@example.com")
        assert await consumer.process(record(status_changed("c-1"), 1)) == "handled"

        async def delivered() -> list[EmailMessage]:
            return smtp_sink.messages()

        [email] = await eventually(delivered, timeout=10)
        link = str(email["List-Unsubscribe"]).strip("<>")
        assert link.startswith("https://mk.example/api/v1/unsubscribe?token=")
        assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        path = link.removeprefix("https://mk.example")

        looked = await http.get(path)  # a link scanner: changes nothing
        assert looked.status_code == 200 and looked.json()["unsubscribed"] is False
        assert await consumer.process(record(status_changed("c-1"), 2)) == "handled"
        assert len([m for m in await messages(db) if m.recipient == "one@example.com"]) == 2

        done = await http.post(
            path,
            content="List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200, done.text
        assert done.json() == {
            "topic": "service-requests",
            "channel": "email",
            "unsubscribed": True,
            "description": "Updates on the problems and requests you reported",
        }
        assert await consumer.process(record(status_changed("c-1"), 3)) == "handled"
        assert len(await messages(db)) == 2  # no third email
        tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        assert (await http.post(tampered)).status_code == 400
