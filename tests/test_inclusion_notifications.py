"""Acceptance: enrolling in an inclusion session emails the citizen as they chose, through
the gateway and real Kafka.

Two citizens keep their email in their notification preferences (through the gateway, each
confirming the address with the link emailed to it); one
turns the ``digital-inclusion`` topic's email off. Both enrol in a session through the
gateway; inclusion publishes ``EnrolmentConfirmed`` (citizen id only, no address) through its
outbox; notifications emails the consenting citizen exactly once, and the other not at all.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from mkinfra.smtp_sink import SmtpSink
from notifications.persistence.tables import Notification
from servicekit.messaging.tables import InboxMessage
from servicekit.testing import eventually

from .conftest import CONFIRM_SUBJECT, Platform, set_confirmed_email

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def _session(client: httpx.AsyncClient, staff: dict[str, str], title: str) -> str:
    programme = await client.post(
        "/api/v1/programmes",
        headers=staff,
        json={
            "title": title,
            "kind": "digital-skills-course",
            "delivered_by": "Milton Keynes Libraries",
        },
    )
    assert programme.status_code == 201, programme.text
    published = await client.post(
        f"/api/v1/programmes/{programme.json()['id']}/status",
        headers=staff,
        json={"status": "published"},
    )
    assert published.status_code == 200, published.text
    venue = await client.post(
        "/api/v1/venues",
        headers=staff,
        json={
            "name": "Central Library",
            "address": "555 Silbury Boulevard",
            "postcode": "MK9 3HL",
            "ward": "Central Milton Keynes",
            "latitude": 52.0429,
            "longitude": -0.7596,
        },
    )
    assert venue.status_code == 201, venue.text
    starts = datetime.now(UTC) + timedelta(days=3)
    session = await client.post(
        "/api/v1/sessions",
        headers=staff,
        json={
            "programme_id": programme.json()["id"],
            "venue_id": venue.json()["id"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 5,
        },
    )
    assert session.status_code == 201, session.text
    return str(session.json()["id"])


async def test_enrolling_emails_the_consenting_citizen_once_and_not_the_opted_out(
    platform: Platform, smtp_sink: SmtpSink
) -> None:
    one, two = platform.bearer("CITIZEN_TOKEN"), platform.bearer("CITIZEN2_TOKEN")
    title = f"Getting started online {uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as http:
        yes = await set_confirmed_email(http, one, smtp_sink, "learner.one@example.com")
        assert yes["topics"]["digital-inclusion"]["email"] is True  # on by default
        await set_confirmed_email(
            http,
            two,
            smtp_sink,
            "learner.two@example.com",
            topics={"digital-inclusion": {"email": False, "sms": False}},
        )

        session_id = await _session(http, platform.bearer("STAFF_TOKEN"), title)
        for citizen in (one, two):
            enrolled = await http.post(
                f"/api/v1/sessions/{session_id}/enrolments", headers=citizen, json={"consent": True}
            )
            assert enrolled.status_code == 201, enrolled.text
            assert enrolled.json()["status"] == "confirmed"

    def learners() -> list[EmailMessage]:  # not the confirmations of their addresses
        return [
            m
            for m in smtp_sink.messages()
            if str(m["To"]).startswith("learner.") and m["Subject"] != CONFIRM_SUBJECT
        ]

    async def arrived() -> list[EmailMessage]:
        return learners()

    # Both EnrolmentConfirmed events handled (each in its own partition: no order between
    # them), and messages were made for the consenting citizen's only.
    db = platform.apps["notifications"].state.runtime.database
    confirmed = "%.EnrolmentConfirmed.v%"

    async def both_handled() -> bool:
        async with db.read_session() as s:
            handled = (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(InboxMessage)
                    .where(col(InboxMessage.event_type).like(confirmed))
                )
            ).scalar_one()
        return bool(handled == 2)

    await eventually(both_handled, timeout=30, message="notifications did not handle both")
    async with db.read_session() as s:
        made = (
            await s.execute(
                sa.select(Notification.recipient, Notification.channel).where(
                    col(Notification.source_event_type).like(confirmed)
                )
            )
        ).all()
    assert [tuple(m) for m in made] == [("learner.one@example.com", "email")]

    [email] = await eventually(arrived, timeout=30, message="no email for the learner")
    assert email["To"] == "learner.one@example.com"
    assert email["Subject"] == f"Your place is booked: {title}"
    text = next(part for part in email.walk() if part.get_content_type() == "text/plain")
    assert "Central Library, 555 Silbury Boulevard, MK9 3HL" in text.get_content()
    assert email["List-Unsubscribe"]
    await asyncio.sleep(1.5)  # give a duplicate or the opted-out email time to show up
    assert [m["To"] for m in learners()] == ["learner.one@example.com"]


async def test_cancelling_a_session_emails_the_consenting_citizen_once_and_not_the_opted_out(
    platform: Platform, smtp_sink: SmtpSink
) -> None:
    """Staff cancel the session both citizens enrolled in: inclusion publishes one
    ``SessionCancelled`` naming both (and, for bookkeeping, an ``EnrolmentCancelled`` per
    enrolment, which sends nothing); the consenting citizen gets exactly one cancellation
    email, the opted-out one none."""
    one, two = platform.bearer("CITIZEN_TOKEN"), platform.bearer("CITIZEN2_TOKEN")
    staff = platform.bearer("STAFF_TOKEN")
    title = f"Staying safe online {uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as http:
        await set_confirmed_email(http, one, smtp_sink, "cancel.one@example.com")
        await set_confirmed_email(
            http,
            two,
            smtp_sink,
            "cancel.two@example.com",
            topics={"digital-inclusion": {"email": False, "sms": False}},
        )

        session_id = await _session(http, staff, title)
        for citizen in (one, two):
            enrolled = await http.post(
                f"/api/v1/sessions/{session_id}/enrolments", headers=citizen, json={"consent": True}
            )
            assert enrolled.status_code == 201, enrolled.text

        refused = await http.post(
            f"/api/v1/sessions/{session_id}/cancel",
            headers=one,
            json={"reason": "The tutor is unwell."},
        )
        assert refused.status_code == 403, refused.text
        cancelled = await http.post(
            f"/api/v1/sessions/{session_id}/cancel",
            headers=staff,
            json={"reason": "The tutor is unwell."},
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        again = await http.post(
            f"/api/v1/sessions/{session_id}/cancel",
            headers=staff,
            json={"reason": "The tutor is unwell."},
        )
        assert again.status_code == 200, again.text  # idempotent: no second event
        late = await http.post(
            f"/api/v1/sessions/{session_id}/enrolments", headers=one, json={"consent": True}
        )
        assert late.status_code == 409, late.text

    def about_this_session() -> list[EmailMessage]:
        return [
            m
            for m in smtp_sink.messages()
            if str(m["To"]).startswith("cancel.") and title in str(m["Subject"])
        ]

    def cancellations() -> list[EmailMessage]:
        return [m for m in about_this_session() if "cancelled" in str(m["Subject"])]

    async def arrived() -> list[EmailMessage]:
        return cancellations()

    [email] = await eventually(arrived, timeout=30, message="no cancellation email")
    assert email["To"] == "cancel.one@example.com"
    assert str(email["Subject"]).startswith(f"Your session has been cancelled: {title} on ")
    text = next(part for part in email.walk() if part.get_content_type() == "text/plain")
    assert "Reason: The tutor is unwell." in text.get_content()
    assert "book another session" in text.get_content()
    await asyncio.sleep(1.5)  # give a duplicate or the opted-out email time to show up
    assert [m["To"] for m in cancellations()] == ["cancel.one@example.com"]
    # One booking email and one cancellation email: none for the enrolment's own cancellation.
    assert sorted(str(m["Subject"]).split(":")[0] for m in about_this_session()) == [
        "Your place is booked",
        "Your session has been cancelled",
    ]
