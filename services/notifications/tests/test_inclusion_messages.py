"""Messages for inclusion's events (rules in ``application/messages.py``): for each rule a
consenting citizen gets exactly one email, one who opted out of the ``digital-inclusion``
topic none, and a text at 22:00 London time is held until 08:00."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from contracts import Envelope, Event
from contracts.inclusion import (
    DeviceReturnOverdue,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentWaitlisted,
    SessionCancelled,
    SessionReminderDue,
    WaitlistPromoted,
)
from notifications.application.messages import RULES, send_event_messages
from notifications.config import Settings
from notifications.domain.messages import INCLUSION, london_date, london_time
from notifications.messaging.subscriptions import SUBSCRIPTIONS
from notifications.persistence.tables import CitizenContact, Consent, Notification
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer, Subscriptions

LONDON = ZoneInfo("Europe/London")
SOURCE = "urn:uk-gov-milton-keynes:inclusion"
STARTS = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # Tuesday, 10am in London (GMT)
AT_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=LONDON).astimezone(UTC)
AT_NIGHT = datetime(2026, 11, 26, 22, 0, tzinfo=LONDON).astimezone(UTC)
PLACE = {
    "programme_title": "Getting started online",
    "venue_name": "Central Library",
    "venue_address": "555 Silbury Boulevard",
    "venue_postcode": "MK9 3HL",
    "session_ends_at": STARTS + timedelta(hours=2),
}


def subscriptions_at(now: datetime) -> Subscriptions:
    """The service's subscriptions, its messages created at ``now``."""
    return {
        event: [partial(h, clock=lambda: now) if h is send_event_messages else h for h in handlers]
        for event, handlers in SUBSCRIPTIONS.items()
    }


def _enrolment(citizen: str | None) -> dict[str, Any]:
    return {
        "enrolment_id": uuid.uuid4(),
        "session_id": uuid.uuid4(),
        "programme_id": uuid.uuid4(),
        "participant_id": uuid.uuid4(),
        "citizen_id": citizen,
        "session_starts_at": STARTS,
        "occurred_at": datetime.now(UTC),
        **PLACE,
    }


def confirmed(citizen: str | None) -> Event:
    return EnrolmentConfirmed(**_enrolment(citizen))


def waitlisted(citizen: str | None) -> Event:
    return EnrolmentWaitlisted(waitlist_position=2, **_enrolment(citizen))


def promoted(citizen: str | None) -> Event:
    return WaitlistPromoted(freed_by_enrolment_id=uuid.uuid4(), **_enrolment(citizen))


def cancelled(citizen: str | None) -> Event:
    return EnrolmentCancelled(
        previous_status="confirmed", cancelled_by="staff", **_enrolment(citizen)
    )


def reminder(citizen: str | None) -> Event:
    return SessionReminderDue(
        session_id=uuid.uuid4(),
        programme_id=uuid.uuid4(),
        venue_id=uuid.uuid4(),
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=2),
        participant_ids=[uuid.uuid4()],
        citizen_ids=[citizen] if citizen else [],
        occurred_at=datetime.now(UTC),
        programme_title="Getting started online",
        venue_name="Central Library",
    )


def session_cancelled(citizen: str | None) -> Event:
    return SessionCancelled(
        session_id=uuid.uuid4(),
        programme_id=uuid.uuid4(),
        venue_id=uuid.uuid4(),
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=2),
        reason="The tutor is unwell",
        participant_ids=[uuid.uuid4()],
        citizen_ids=[citizen] if citizen else [],
        cancelled_enrolment_ids=[uuid.uuid4()],
        occurred_at=datetime.now(UTC),
        programme_title="Getting started online",
        venue_name="Central Library",
        venue_address="555 Silbury Boulevard",
        venue_postcode="MK9 3HL",
    )


def overdue(citizen: str | None) -> Event:
    return DeviceReturnOverdue(
        device_id=uuid.uuid4(),
        loan_id=uuid.uuid4(),
        participant_id=uuid.uuid4(),
        citizen_id=citizen,
        due_at=STARTS,
        occurred_at=datetime.now(UTC),
    )


#: (event maker, expected email subject, whether the rule also texts)
CASES = {
    "EnrolmentConfirmed": (confirmed, "Your place is booked: Getting started online", True),
    "EnrolmentWaitlisted": (
        waitlisted,
        "You are on the waiting list: Getting started online",
        False,
    ),
    "WaitlistPromoted": (promoted, "A place has come free: Getting started online", True),
    "EnrolmentCancelled": (
        cancelled,
        "Your booking has been cancelled: Getting started online",
        False,
    ),
    "SessionReminderDue": (
        reminder,
        "Reminder: Getting started online on Tuesday 1 December 2026",
        True,
    ),
    "SessionCancelled": (
        session_cancelled,
        "Your session has been cancelled: Getting started online on Tuesday 1 December 2026",
        True,
    ),
    "DeviceReturnOverdue": (overdue, "Please return the device you borrowed", True),
}


def test_every_inclusion_rule_is_tested_and_in_the_inclusion_topic() -> None:
    inclusion = {cls.event_name for cls in RULES if cls.context == "inclusion"}
    assert inclusion == set(CASES)
    assert all(RULES[cls].topic is INCLUSION for cls in RULES if cls.context == "inclusion")


def test_dates_and_times_read_as_gov_uk_writes_them() -> None:
    assert london_date(STARTS) == "Tuesday 1 December 2026"
    assert london_time(STARTS) == "10am"
    assert london_time(datetime(2026, 7, 1, 13, 30, tzinfo=UTC)) == "2:30pm"  # BST
    assert london_time(datetime(2026, 12, 1, 12, 0, tzinfo=UTC)) == "midday"


def record(event: Event, offset: int) -> ConsumerRecord:  # type: ignore[type-arg]
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


def consumer(db: Database, now: datetime) -> EventConsumer:
    settings = Settings(messaging_enabled=False, environment="test", staff_alert_email=None)
    return EventConsumer(
        db,
        bootstrap_servers="127.0.0.1:1",
        group_id="notifications",
        subscriptions=subscriptions_at(now),
        settings=settings,
        service_name="notifications",
        source=settings.cloudevents_source,
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
                    topic=INCLUSION.name,
                    channel=channel,
                    granted=granted,
                    updated_at=now,
                )
            )
        await s.commit()


async def messages(db: Database) -> list[Notification]:
    async with db.session() as s:
        return list(
            (
                await s.execute(
                    sa.select(Notification).order_by(Notification.channel, Notification.recipient)
                )
            )
            .scalars()
            .all()
        )


@pytest.mark.parametrize("case", list(CASES))
async def test_consenting_citizen_gets_one_email_and_an_opted_out_one_none(
    db: Database, case: str
) -> None:
    make, subject, _ = CASES[case]
    handle = consumer(db, AT_NOON)
    await add_citizen(db, "c-yes", email="yes@example.com", phone="+447700900123")
    await add_citizen(db, "c-no", email="no@example.com", consents={"email": False})

    event = make("c-yes")
    rec = record(event, 1)
    assert await handle.process(rec) == "handled"
    assert await handle.process(rec) == "duplicate"  # redelivered: nothing new
    [email] = await messages(db)  # SMS is off until the citizen turns it on
    assert (email.channel, email.recipient, email.subject) == ("email", "yes@example.com", subject)
    assert email.next_attempt_at is None
    assert email.source_event_type == event.event_type()
    assert email.unsubscribe_url and "/api/v1/unsubscribe?token=" in email.unsubscribe_url
    assert "digital inclusion support" in (email.text_body or "")

    for n, citizen in enumerate(("c-no", "c-unknown", None), start=2):
        assert await handle.process(record(make(citizen), n)) == "handled"
    assert len(await messages(db)) == 1


@pytest.mark.parametrize("case", [c for c, (_, _, sms) in CASES.items() if sms])
async def test_a_text_at_22_london_time_is_held_until_8(db: Database, case: str) -> None:
    make = CASES[case][0]
    await add_citizen(db, "c-sms", phone="+447700900321", consents={"email": False, "sms": True})
    await add_citizen(db, "c-email", email="night@example.com")
    handle = consumer(db, AT_NIGHT)
    assert await handle.process(record(make("c-sms"), 1)) == "handled"
    assert await handle.process(record(make("c-email"), 2)) == "handled"
    email, sms = await messages(db)
    assert (sms.channel, sms.recipient) == ("sms", "+447700900321")
    assert sms.body.startswith("MK Council")
    assert sms.next_attempt_at == datetime(2026, 11, 27, 8, 0, tzinfo=LONDON)  # held
    assert email.next_attempt_at is None  # email is not held


async def test_a_reminder_reaches_each_participant_once(db: Database) -> None:
    await add_citizen(db, "c-1", email="one@example.com")
    await add_citizen(
        db, "c-2", email="two@example.com", phone="+447700900222", consents={"sms": True}
    )
    await add_citizen(db, "c-3", email="one@example.com")  # shares c-1's address
    await add_citizen(db, "c-4", email="four@example.com", consents={"email": False})
    event = SessionReminderDue(
        session_id=uuid.uuid4(),
        programme_id=uuid.uuid4(),
        venue_id=uuid.uuid4(),
        starts_at=STARTS,
        citizen_ids=["c-1", "c-2", "c-3", "c-4", "c-2", "c-unknown"],
        occurred_at=datetime.now(UTC),
    )  # an older event: no programme or venue fields
    assert await consumer(db, AT_NOON).process(record(event, 1)) == "handled"
    sent = [(m.channel, m.recipient) for m in await messages(db)]
    assert sent == [
        ("email", "one@example.com"),
        ("email", "two@example.com"),
        ("sms", "+447700900222"),
    ]
    assert (await messages(db))[
        0
    ].subject == "Reminder: a digital inclusion session on Tuesday 1 December 2026"


async def test_no_message_when_erasure_cancelled_the_enrolment(db: Database) -> None:
    await add_citizen(db, "c-gone", email="gone@example.com")
    event = EnrolmentCancelled(
        previous_status="confirmed", cancelled_by="erasure", **_enrolment("c-gone")
    )
    assert await consumer(db, AT_NOON).process(record(event, 1)) == "handled"
    assert await messages(db) == []


async def test_a_cancelled_session_tells_each_citizen_once_by_email_and_text(db: Database) -> None:
    await add_citizen(
        db, "c-1", email="one@example.com", phone="+447700900111", consents={"sms": True}
    )
    await add_citizen(db, "c-2", email="two@example.com")
    await add_citizen(db, "c-3", email="three@example.com", consents={"email": False})
    event = SessionCancelled(
        session_id=uuid.uuid4(),
        programme_id=uuid.uuid4(),
        venue_id=uuid.uuid4(),
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=2),
        reason="The library is closed for repairs.",
        citizen_ids=["c-1", "c-2", "c-3", "c-1", "c-unknown"],
        occurred_at=datetime.now(UTC),
        programme_title="Getting started online",
        venue_name="Central Library",
        venue_address="555 Silbury Boulevard",
        venue_postcode="MK9 3HL",
    )
    handle, rec = consumer(db, AT_NOON), record(event, 1)
    assert await handle.process(rec) == "handled"
    assert await handle.process(rec) == "duplicate"  # redelivered: nothing new
    sent = await messages(db)
    assert [(m.channel, m.recipient) for m in sent] == [
        ("email", "one@example.com"),
        ("email", "two@example.com"),
        ("sms", "+447700900111"),
    ]
    email, sms = sent[0], sent[2]
    text = email.text_body or ""
    assert "session of Getting started online on Tuesday 1 December 2026 at 10am" in text
    assert "Central Library, 555 Silbury Boulevard, MK9 3HL" in text
    assert "Reason: The library is closed for repairs." in text
    assert "book another session" in text
    assert sms.body == (
        "MK Council: your session has been cancelled: Getting started online "
        "on Tuesday 1 December 2026 at 10am. The library is closed for "
        "repairs. You can book another session on our website."
    )
    assert sms.next_attempt_at is None


async def test_no_second_message_for_enrolments_cancelled_with_their_session(db: Database) -> None:
    # The session's cancellation also cancels each enrolment (EnrolmentCancelled, by
    # "session-cancelled"): SessionCancelled is the one message, so that one sends nothing.
    await add_citizen(
        db, "c-1", email="one@example.com", phone="+447700900111", consents={"sms": True}
    )
    handle = consumer(db, AT_NOON)
    by_session = EnrolmentCancelled(
        previous_status="confirmed", cancelled_by="session-cancelled", **_enrolment("c-1")
    )
    assert await handle.process(record(by_session, 1)) == "handled"
    assert await messages(db) == []
    assert await handle.process(record(session_cancelled("c-1"), 2)) == "handled"
    assert [(m.channel, m.source_event_type) for m in await messages(db)] == [
        ("email", SessionCancelled.event_type()),
        ("sms", SessionCancelled.event_type()),
    ]


async def test_events_without_optional_fields_or_a_known_citizen_are_handled(db: Database) -> None:
    """Older or thinner events still make a message; an unknown citizen is nobody to tell
    (handled, not retried); an event missing a required field goes to the DLQ, with why."""
    await add_citizen(
        db, "c-1", email="one@example.com", phone="+447700900111", consents={"sms": True}
    )
    handle = consumer(db, AT_NOON)
    bare = SessionCancelled(
        session_id=uuid.uuid4(),
        programme_id=uuid.uuid4(),
        venue_id=uuid.uuid4(),
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=2),
        reason=" ",
        citizen_ids=["c-unknown", "c-1", ""],
        occurred_at=datetime.now(UTC),
    )
    assert await handle.process(record(bare, 1)) == "handled"
    email, sms = await messages(db)
    assert email.subject == (
        "Your session has been cancelled: a digital inclusion session on Tuesday 1 December 2026"
    )
    assert "the venue shown in your booking" in (email.text_body or "")
    assert "Reason:" not in (email.text_body or "")  # no reason given: no empty line for it
    assert sms.body.startswith("MK Council: your session has been cancelled")

    thin = EnrolmentConfirmed(
        enrolment_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        programme_id=uuid.uuid4(),
        participant_id=uuid.uuid4(),
        citizen_id=None,
        session_starts_at=STARTS,
        occurred_at=datetime.now(UTC),
    )
    assert await handle.process(record(thin, 2)) == "handled"
    unknown = EnrolmentConfirmed(**{**thin.model_dump(), "citizen_id": "c-unknown"})
    assert await handle.process(record(unknown, 3)) == "handled"
    assert len(await messages(db)) == 2

    dead: list[str] = []

    async def dead_letter(rec: Any, letter: Any) -> str:
        dead.append(letter.reason)
        return "dead-lettered"

    handle._dead_letter = dead_letter  # type: ignore[method-assign]
    broken = record(bare, 4)
    broken.value = b'{"session_id": "not-a-uuid"}'
    assert await handle.process(broken) == "dead-lettered"
    assert dead == ["undecodable"]
