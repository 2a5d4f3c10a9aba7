"""ServicePublished -> one staff alert row, through the real consumer's ``process`` (inbox
included), on SQLite and PostgreSQL. No broker is needed: nothing is dead-lettered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from contracts import Envelope
from contracts.citizen_services import (
    ServicePublished,
    ServiceRequestSubmitted,
    ServiceRetired,
)
from mkinfra.smtp_sink import SmtpSink
from notifications.config import Settings
from notifications.main import create_app
from notifications.messaging.subscriptions import SUBSCRIPTIONS
from notifications.persistence.tables import Notification
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer
from servicekit.messaging.tables import InboxMessage
from servicekit.testing import eventually, running_app

STAFF = "digital-team@milton-keynes.example"
SOURCE = "urn:uk-gov-milton-keynes:citizen-services"


def record(
    event: ServicePublished | ServiceRetired | ServiceRequestSubmitted,
    offset: int = 0,
    envelope: Envelope | None = None,
) -> ConsumerRecord:  # type: ignore[type-arg]
    envelope = envelope or Envelope(
        source=SOURCE,
        type=event.event_type(),
        subject=event.aggregate_id,
        dataschema=event.dataschema(),
    )
    value = event.to_json()
    key = event.aggregate_id.encode()
    return ConsumerRecord(
        topic=event.topic,
        partition=0,
        offset=offset,
        timestamp=int(datetime.now(UTC).timestamp() * 1000),
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=envelope.to_headers(),
    )


def published(name: str = "Report a pothole") -> ServicePublished:
    return ServicePublished(
        service_id=uuid.uuid4(),
        service_code="report-a-pothole",
        slug="report-a-pothole",
        name=name,
        entry_version=2,
        occurred_at=datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
    )


def consumer_for(db: Database, settings: Settings, group: str = "notifications") -> EventConsumer:
    return EventConsumer(
        db,
        bootstrap_servers="127.0.0.1:1",  # never contacted here
        group_id=group,
        subscriptions=SUBSCRIPTIONS,
        settings=settings,
        service_name="notifications",
        source=settings.cloudevents_source,
    )


async def rows(db: Database) -> list[Notification]:
    async with db.session() as s:
        return list((await s.execute(sa.select(Notification))).scalars().all())


async def test_service_published_creates_one_alert_and_a_redelivery_is_a_duplicate(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        staff_alert_email=STAFF,
    )
    app = create_app(settings)
    async with running_app(app):  # migrations applied, the delivery worker running
        db: Database = app.state.runtime.database
        consumer = consumer_for(db, settings)
        event = published()
        rec = record(event, offset=41)
        envelope = Envelope.from_headers(rec.headers)

        assert await consumer.process(rec) == "handled"
        [alert] = await rows(db)
        assert alert.channel == "email"
        assert alert.recipient == STAFF
        assert alert.subject == "Service published: Report a pothole"
        assert "Report a pothole" in alert.body
        assert "Service code: report-a-pothole" in alert.body
        assert "Catalogue version: 2" in alert.body
        assert alert.source_event_id == envelope.id
        assert alert.source_event_type == ServicePublished.event_type()

        # Kafka redelivers the same record (a crash before the offset commit): no new row.
        assert await consumer.process(rec) == "duplicate"
        assert await consumer.process(record(event, offset=42, envelope=envelope)) == "duplicate"
        assert [r.id for r in await rows(db)] == [alert.id]
        async with db.session() as s:
            inbox = (await s.execute(sa.select(InboxMessage))).scalars().all()
        assert [(i.consumer_group, i.event_id, i.offset) for i in inbox] == [
            ("notifications", envelope.id, 41)
        ]

        # ...and the worker, woken by the commit, emails it exactly once.
        async def delivered() -> list:
            return [r for r in await rows(db) if r.status == "delivered"]

        await eventually(delivered, timeout=10, message="alert not delivered")
        [email] = smtp_sink.messages()
        assert email["To"] == STAFF
        assert email["Subject"] == "Service published: Report a pothole"


async def test_a_new_event_for_the_same_service_is_a_new_alert(db: Database) -> None:
    settings = Settings(messaging_enabled=False, environment="test", staff_alert_email=STAFF)
    consumer = consumer_for(db, settings)
    first = published()
    again = first.model_copy(update={"entry_version": 4})
    assert await consumer.process(record(first, 1)) == "handled"
    assert await consumer.process(record(again, 2)) == "handled"
    assert [r.subject for r in await rows(db)] == ["Service published: Report a pothole"] * 2
    # events it does not subscribe to are skipped, without effects
    submitted = ServiceRequestSubmitted(
        request_id=uuid.uuid4(),
        service_code="x",
        status="open",
        service_id=first.service_id,
        occurred_at=datetime.now(UTC),
    )
    assert await consumer.process(record(submitted, 3)) == "skipped"
    # a catalogue event with no staff alert is only offered to partners' webhooks (none here)
    retired = ServiceRetired(
        service_id=first.service_id,
        service_code="x",
        slug="x",
        name="x",
        entry_version=5,
        occurred_at=datetime.now(UTC),
    )
    assert await consumer.process(record(retired, 4)) == "handled"
    assert len(await rows(db)) == 2


async def test_no_alert_when_no_staff_address_is_configured(db: Database) -> None:
    settings = Settings(messaging_enabled=False, environment="test", staff_alert_email=None)
    consumer = consumer_for(db, settings)
    assert await consumer.process(record(published(), 7)) == "handled"
    assert await rows(db) == []
