"""application/messages.py with fake repositories: consent per topic and channel, one
message per address, quiet hours, the unsubscribe link."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.citizen_services import ServiceRequestStatusChanged
from contracts.inclusion import SessionReminderDue
from notifications.application.messages import RULES, message_citizens
from notifications.config import Settings
from notifications.domain.messages import SERVICE_REQUESTS
from notifications.domain.unsubscribe import read_token
from notifications.persistence.tables import CitizenContact, Consent

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)


def _citizen(
    contacts_repo: Any,
    citizen: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    **choices: bool,
) -> None:
    contacts_repo.add(CitizenContact(citizen_id=citizen, email=email, phone=phone, updated_at=NOON))
    for channel, granted in choices.items():
        contacts_repo.add_consent(
            Consent(
                citizen_id=citizen,
                topic=SERVICE_REQUESTS.name,
                channel=channel,
                granted=granted,
                updated_at=NOON,
            )
        )


def _status_changed(*citizens: str) -> list[ServiceRequestStatusChanged]:
    return [
        ServiceRequestStatusChanged(
            request_id=uuid.uuid4(),
            service_code="potholes",
            status="in_progress",
            previous_status="open",
            citizen_id=c,
            occurred_at=NOON,
        )
        for c in citizens
    ]


async def _handle(
    uow: Any,
    contacts_repo: Any,
    notifications: Any,
    event: Any,
    settings: Settings,
    now: datetime = NOON,
) -> None:
    await message_citizens(
        uow,
        contacts_repo,
        notifications,
        event,
        rule=RULES[type(event)],
        settings=settings,
        event_id="ev-1",
        event_type=event.event_type(),
        now=now,
    )


async def test_email_by_default_sms_only_when_chosen_and_held_through_the_night(
    uow: Any, contacts_repo: Any, notifications: Any, settings: Settings
) -> None:
    _citizen(contacts_repo, "c-yes", email="yes@example.com", phone="+447700900123", sms=True)
    [event] = _status_changed("c-yes")
    await _handle(uow, contacts_repo, notifications, event, settings, now=NIGHT)
    rows = sorted(notifications.rows.values(), key=lambda r: r["channel"])
    assert [(r["channel"], r["recipient"]) for r in rows] == [
        ("email", "yes@example.com"),
        ("sms", "+447700900123"),
    ]
    email, sms = rows
    assert email["next_attempt_at"] is None and sms["next_attempt_at"] is not None
    assert email["subject"].startswith("Your report") and email["source_event_id"] == "ev-1"
    token = email["unsubscribe_url"].split("token=")[1]
    assert read_token(token, settings.unsubscribe_secret.get_secret_value()) == (
        "c-yes",
        SERVICE_REQUESTS.name,
    )
    assert len(uow.events) == 2 and {e.status for e in uow.events} == {"created"}


async def test_opted_out_unknown_and_addressless_citizens_get_nothing(
    uow: Any, contacts_repo: Any, notifications: Any, settings: Settings
) -> None:
    contacts_repo.add(CitizenContact(citizen_id="c-no", email="no@example.com", updated_at=NOON))
    contacts_repo.add_consent(
        Consent(
            citizen_id="c-no",
            topic=SERVICE_REQUESTS.name,
            channel="email",
            granted=False,
            updated_at=NOON,
        )
    )
    _citizen(contacts_repo, "c-phone", phone="+447700900456")  # SMS is off by default
    for event in _status_changed("c-no", "c-phone", "c-unknown"):
        await _handle(uow, contacts_repo, notifications, event, settings)
    assert notifications.rows == {} and uow.events == []


async def test_citizens_sharing_an_address_get_one_message(
    uow: Any, contacts_repo: Any, notifications: Any, settings: Settings
) -> None:
    _citizen(contacts_repo, "c-1", email="family@example.com")
    _citizen(contacts_repo, "c-2", email="family@example.com")
    event = SessionReminderDue(
        session_id=uuid.uuid4(),
        programme_id=uuid.uuid4(),
        venue_id=uuid.uuid4(),
        starts_at=NOON,
        citizen_ids=["c-1", "c-2", "c-1"],
        occurred_at=NOON,
    )
    await _handle(uow, contacts_repo, notifications, event, settings)
    assert [r["recipient"] for r in notifications.rows.values()] == ["family@example.com"]
