"""Digital inclusion, done-when, through the gateway on PostgreSQL and Kafka:

* 100 citizens enrol at once into a 10-place session, through the gateway, with every
  service and the gateway its own process (as deployed): all 100 get 201, exactly 10 confirmed and
  90 waitlisted, in the order the service accepted them (arrival sequence 1..100, waitlist
  positions 1..90);
  cancelling one confirmed enrolment promotes exactly one, the first waitlisted; every change
  emits exactly one event (counted in the outbox and on Kafka);
* help near me from MK9 lists the Central Milton Keynes venues (seed data) first.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from contracts.topics import ENROLMENT
from servicekit.messaging.tables import OutboxMessage
from servicekit.testing import end_offsets, read_topic

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


async def _session(
    client: httpx.AsyncClient, staff: dict[str, str], capacity: int
) -> dict[str, Any]:
    programme = await client.post(
        "/api/v1/programmes",
        headers=staff,
        json={
            "title": f"Digital Champions drop-in {uuid.uuid4().hex[:6]}",
            "kind": "drop-in-help",
            "delivered_by": "MK Digital Champions network",
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
            "name": "Fishermead Trinity Centre",
            "address": "Fishermead Boulevard",
            "postcode": "MK6 2LP",
            "ward": "Woughton and Fishermead",
            "latitude": 52.0335,
            "longitude": -0.7455,
        },
    )
    assert venue.status_code == 201, venue.text
    starts = datetime.now(UTC) + timedelta(days=2)
    session = await client.post(
        "/api/v1/sessions",
        headers=staff,
        json={
            "programme_id": programme.json()["id"],
            "venue_id": venue.json()["id"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": capacity,
        },
    )
    assert session.status_code == 201, session.text
    return session.json()  # type: ignore[no-any-return]


async def _events_of(platform: Platform, session_id: str) -> Counter[str]:
    """This session's enrolment events in inclusion's outbox, by type."""
    async with platform.database("inclusion") as db, db.session() as s:
        rows = (
            await s.execute(
                sa.select(OUTBOX.c.event_type, OUTBOX.c.payload).where(
                    OUTBOX.c.topic == ENROLMENT.name
                )
            )
        ).all()
    return Counter(
        t.split(".")[-2] for t, payload in rows if json.loads(payload)["session_id"] == session_id
    )


async def test_100_concurrent_enrolments_into_10_places(
    platform_processes: Platform, kafka_bootstrap: str
) -> None:
    platform = platform_processes
    staff = platform.bearer("STAFF_TOKEN")
    tokens = [platform.issuer.mint(f"citizen-{i}", ["citizen"]) for i in range(100)]
    async with httpx.AsyncClient(
        base_url=platform.gateway_url, timeout=60, limits=httpx.Limits(max_connections=200)
    ) as client:
        session = await _session(client, staff, capacity=10)
        start = await end_offsets(kafka_bootstrap, ENROLMENT.name)

        responses = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/sessions/{session['id']}/enrolments",
                    json={"consent": True},
                    headers={"Authorization": f"Bearer {t}"},
                )
                for t in tokens
            )
        )
        assert Counter(r.status_code for r in responses) == {201: 100}, [
            r.text for r in responses if r.status_code != 201
        ]
        bodies = [r.json() for r in responses]
        assert Counter(b["status"] for b in bodies) == {"confirmed": 10, "waitlisted": 90}
        # Arrival order = the order the service committed them: sequence 1..100, the first
        # ten confirmed, the other ninety waitlisted at positions 1..90 in that order.
        arrived = sorted(bodies, key=lambda b: b["sequence"])
        assert [b["sequence"] for b in arrived] == list(range(1, 101))
        assert [b["status"] for b in arrived] == ["confirmed"] * 10 + ["waitlisted"] * 90
        assert [b["waitlist_position"] for b in arrived[10:]] == list(range(1, 91))
        assert await _events_of(platform, session["id"]) == {
            "EnrolmentConfirmed": 10,
            "EnrolmentWaitlisted": 90,
        }

        # The citizen with the 4th place cancels: exactly one promotion, sequence 11.
        owner = {b["id"]: tokens[i] for i, b in enumerate(bodies)}
        leaving = arrived[3]
        cancelled = await client.post(
            f"/api/v1/enrolments/{leaving['id']}/cancel",
            headers={"Authorization": f"Bearer {owner[leaving['id']]}"},
        )
        assert cancelled.status_code == 200, cancelled.text
        # Another citizen cannot see or cancel it (404, as if it did not exist).
        other = {"Authorization": f"Bearer {owner[arrived[0]['id']]}"}
        assert (
            await client.get(f"/api/v1/enrolments/{leaving['id']}", headers=other)
        ).status_code == 404
        listed = (
            await client.get(f"/api/v1/sessions/{session['id']}/enrolments", headers=staff)
        ).json()
        assert Counter(e["status"] for e in listed) == {
            "confirmed": 10,
            "waitlisted": 89,
            "cancelled": 1,
        }
        promoted = [e for e in listed if e["promoted_at"] is not None]
        assert [e["sequence"] for e in promoted] == [11]
        assert [e["waitlist_position"] for e in listed if e["status"] == "waitlisted"] == list(
            range(1, 90)
        )
        expected = {
            "EnrolmentConfirmed": 10,
            "EnrolmentWaitlisted": 90,
            "EnrolmentCancelled": 1,
            "WaitlistPromoted": 1,
        }
        assert await _events_of(platform, session["id"]) == expected

        # The same 102 events, once each, on Kafka.
        records = await read_topic(
            kafka_bootstrap,
            ENROLMENT.name,
            start=start,
            count=102,
            timeout=30,
            predicate=lambda r: json.loads(r.value)["session_id"] == session["id"],
        )
        headers = [dict(r.headers) for r in records]
        assert len({h["ce_id"] for h in headers}) == len(records) == 102
        assert Counter(h["ce_type"].decode().split(".")[-2] for h in headers) == expected
        assert {r.key.decode() for r in records} == {b["id"] for b in bodies}


async def test_help_near_me_from_mk9_lists_central_milton_keynes_first(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        r = await client.get("/api/v1/help-near-me", params={"postcode": "MK9"})
        assert r.status_code == 200, r.text
        venues = r.json()["venues"]
        wards = [v["venue"]["ward"] for v in venues]
        assert wards[:2] == ["Central Milton Keynes"] * 2, wards
        assert "Central Milton Keynes" not in wards[2:]
        assert [v["distance_km"] for v in venues] == sorted(v["distance_km"] for v in venues)
        assert any(v["sessions"] for v in venues[:2])  # seed data has sessions there
