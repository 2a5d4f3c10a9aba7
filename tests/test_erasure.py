"""Acceptance: one erasure request forgets the citizen across the platform, through the
gateway and real Kafka.

A citizen confirms their email in their notification preferences, reports a problem (with
contact details) and books a digital inclusion session; both send them an email. They ask
for their data to be erased (``DELETE /api/v1/participants/me``): inclusion pseudonymises
the participant and publishes ``CitizenErasureRequested``; notifications deletes their
contact details and blanks their messages (the status rows stay), citizen-services redacts
their request (the service, status and a coarse place stay). Another citizen's data is
untouched, and a repeated request changes nothing more.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from mkinfra.smtp_sink import SmtpSink
from notifications.persistence.tables import CitizenContact, Notification
from servicekit.messaging.tables import InboxMessage, OutboxMessage
from servicekit.testing import eventually

from .conftest import CONFIRM_SUBJECT, Platform, set_confirmed_email
from .test_inclusion_notifications import _session

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

ERASURE = "%.CitizenErasureRequested.v1"


async def _erasures_published(platform: Platform) -> list[str]:
    """The ids of the erasure events this test's inclusion wrote to its outbox."""
    async with platform.apps["inclusion"].state.runtime.database.read_session() as s:
        return list(
            (
                await s.execute(
                    sa.select(OutboxMessage.event_id).where(
                        col(OutboxMessage.event_type).like(ERASURE)
                    )
                )
            ).scalars()
        )


async def _handled_erasures(platform: Platform, service: str) -> int:
    """How many of this test's erasure events ``service`` has handled.

    Counted by event id: the session's broker is shared by every test of this worker, and a
    consumer group that resumes from offsets an earlier test committed also handles the
    erasures other tests published (each into this test's fresh database)."""
    ids = await _erasures_published(platform)
    if not ids:
        return 0
    async with platform.apps[service].state.runtime.database.read_session() as s:
        return int(
            (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(InboxMessage)
                    .where(col(InboxMessage.event_id).in_(ids))
                )
            ).scalar_one()
        )


async def _messages(platform: Platform) -> list[Notification]:
    async with platform.apps["notifications"].state.runtime.database.read_session() as s:
        return list((await s.execute(sa.select(Notification))).scalars().all())


async def test_one_erasure_request_forgets_the_citizen_everywhere(
    platform: Platform, smtp_sink: SmtpSink
) -> None:
    tag = uuid.uuid4().hex[:8]
    one, two = platform.bearer("CITIZEN_TOKEN"), platform.bearer("CITIZEN2_TOKEN")
    staff = platform.bearer("STAFF_TOKEN")
    address, other_address = f"erase.me.{tag}@example.com", f"keep.me.{tag}@example.com"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as http:
        await set_confirmed_email(http, one, smtp_sink, address)
        await set_confirmed_email(http, two, smtp_sink, other_address)
        created = await http.post(
            "/api/v1/services",
            headers=staff,
            json={
                "name": f"Report a broken bench {tag}",
                "service_code": f"bench-{tag}",
                "attributes": [
                    {
                        "code": "damage",
                        "datatype": "singlevaluelist",
                        "required": True,
                        "description": "What is wrong?",
                        "values": [{"key": "broken", "name": "Broken slats"}],
                    }
                ],
            },
        )
        assert created.status_code == 201, created.text
        assert (
            await http.post(f"/api/v1/services/{created.json()['id']}/publish", headers=staff)
        ).status_code == 200
        requests: dict[str, str] = {}
        for who, headers in (("one", one), ("two", two)):
            submitted = await http.post(
                "/api/v1/service-requests",
                headers=headers,
                json={
                    "service_code": f"bench-{tag}",
                    "description": f"Slats snapped, says {who}-{tag}",
                    "lat": 52.040612,
                    "long": -0.759437,
                    "address": f"{who}'s house, MK6 2LP",
                    "attributes": {"damage": "broken"},
                    "contact": {"email": f"{who}.{tag}@example.com", "first_name": f"N{tag}"},
                    "contact_consent": True,
                },
            )
            assert submitted.status_code == 201, submitted.text
            requests[who] = submitted.json()["id"]
            updated = await http.post(
                f"/api/v1/service-requests/{requests[who]}/updates",
                headers=staff,
                json={"status": "investigating"},
            )
            assert updated.status_code == 200, updated.text
        session_id = await _session(http, staff, f"Getting started online {tag}")
        enrolled = await http.post(
            f"/api/v1/sessions/{session_id}/enrolments",
            headers=one,
            json={"consent": True, "preferred_name": f"Sam-{tag}", "postcode": "MK6 2LP"},
        )
        assert enrolled.status_code == 201, enrolled.text

        def to(recipient: str) -> list[EmailMessage]:
            return [
                m
                for m in smtp_sink.messages()
                if m["To"] == recipient and m["Subject"] != CONFIRM_SUBJECT
            ]

        async def both_emails() -> bool:  # the report's update and the booking
            return len(to(address)) == 2 and len(to(other_address)) == 1

        await eventually(both_emails, timeout=30, message="the citizen's emails did not come")
        before = await _messages(platform)
        assert len([n for n in before if n.recipient == address]) == 3  # with the confirmation

        assert (await http.delete("/api/v1/participants/me", headers=one)).status_code == 204

        async def everywhere() -> bool:
            counts = [
                await _handled_erasures(platform, s)
                for s in ("notifications", "citizen-services", "inclusion")
            ]
            return counts == [1, 1, 1]

        await eventually(everywhere, timeout=60, message="not every service erased the citizen")

        # notifications: no contact details, messages blanked, every status row kept
        prefs = (await http.get("/api/v1/preferences", headers=one)).json()
        assert (prefs["email"], prefs["email_pending"], prefs["phone"]) == (None, None, None)
        after = {n.id: n for n in await _messages(platform)}
        assert set(after) == {n.id for n in before}
        for n in before:
            kept = after[n.id]
            if n.recipient == address:
                assert (kept.recipient, kept.subject, kept.body, kept.citizen_id) == (
                    None,
                    None,
                    "",
                    None,
                )
                assert kept.status == n.status or kept.status == "delivered"
            else:
                assert kept.recipient == n.recipient and kept.body == n.body
        async with platform.apps["notifications"].state.runtime.database.read_session() as s:
            assert await s.get(CitizenContact, "citizen-dev-1") is None
            assert await s.get(CitizenContact, "citizen-dev-2") is not None

        # citizen-services: the request stays, without the citizen
        mine = (await http.get(f"/api/v1/service-requests/{requests['one']}", headers=staff)).json()
        assert (mine["status"], mine["description"], mine["address"]) == ("investigating", "", None)
        assert (mine["lat"], mine["long"]) == (52.041, -0.759)
        assert (await http.get("/api/v1/service-requests", headers=one)).json()["total"] == 0
        theirs = (
            await http.get(f"/api/v1/service-requests/{requests['two']}", headers=staff)
        ).json()
        assert theirs["description"] == f"Slats snapped, says two-{tag}"

        # inclusion: nothing kept about them, their upcoming place cancelled
        assert (await http.get("/api/v1/participants/me", headers=one)).status_code == 404

        # No table of citizen-services or notifications holds their personal data any more.
        for service in ("citizen-services", "notifications"):
            text = await _all_text(platform, service)
            for personal in (
                "citizen-dev-1",
                address,
                f"one.{tag}@example.com",
                f"one-{tag}",
                "one's house",
            ):
                assert personal not in text, (service, personal)
            if service == "citizen-services":
                assert f"two-{tag}" in text  # the other citizen's request is all there

        # Asking again: a second request, handled by each service, changes nothing.
        assert (await http.delete("/api/v1/participants/me", headers=one)).status_code == 204

        async def twice() -> bool:
            counts = [
                await _handled_erasures(platform, s)
                for s in ("notifications", "citizen-services", "inclusion")
            ]
            return counts == [2, 2, 2]

        await eventually(twice, timeout=60, message="the second request was not handled")
        assert {n.id: (n.recipient, n.body) for n in await _messages(platform)} == {
            i: (n.recipient, n.body) for i, n in after.items()
        }


async def _all_text(platform: Platform, service: str) -> str:
    """Every row of every table of the service's database, as one string."""
    async with platform.apps[service].state.runtime.database.read_session() as s:
        conn = await s.connection()
        names: Any = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        out: list[str] = []
        for name in sorted(names):
            rows = (await s.execute(sa.text(f'SELECT * FROM "{name}"'))).all()
            out += [repr(tuple(r)) for r in rows]
    return "\n".join(out)
