"""Enrolments at once, on SQLite and PostgreSQL: no overbooking, a contiguous waitlist in
the order the service accepted them, no lost or doubled promotion, one event per change."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from inclusion.config import Settings
from inclusion.main import create_app
from servicekit.messaging.tables import OutboxMessage
from servicekit.testing import STAFF, identity_headers, running_app

from ..conftest import soon

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


async def scheduled_session(client: httpx.AsyncClient, *, capacity: int) -> dict[str, Any]:
    """A published programme's session at a new venue, starting soon (as staff)."""
    programme = (
        await client.post(
            "/api/v1/programmes",
            json={"title": "Drop-in", "kind": "drop-in-help", "delivered_by": "MK"},
        )
    ).json()
    await client.post(f"/api/v1/programmes/{programme['id']}/status", json={"status": "published"})
    venue = (
        await client.post(
            "/api/v1/venues",
            json={
                "name": "Hub",
                "address": "1 Street",
                "postcode": "MK9 3HL",
                "ward": "Central Milton Keynes",
                "latitude": 52.04,
                "longitude": -0.76,
            },
        )
    ).json()
    starts = soon()
    session: dict[str, Any] = (
        await client.post(
            "/api/v1/sessions",
            json={
                "programme_id": programme["id"],
                "venue_id": venue["id"],
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "capacity": capacity,
            },
        )
    ).json()
    return session


async def enrol_citizen(
    client: httpx.AsyncClient, session: dict[str, Any], n: int
) -> httpx.Response:
    return await client.post(
        f"/api/v1/sessions/{session['id']}/enrolments",
        json={"consent": True},
        headers=identity_headers(f"c-{n}", "citizen"),
    )


async def test_concurrent_enrolments_and_cancellations(settings: Settings) -> None:
    app = create_app(settings)
    async with (
        running_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers=identity_headers(*STAFF)) as client,
    ):
        session = await scheduled_session(client, capacity=5)
        responses = await asyncio.gather(*(enrol_citizen(client, session, n) for n in range(30)))
        assert Counter(r.status_code for r in responses) == {201: 30}
        bodies = [r.json() for r in responses]
        assert Counter(b["status"] for b in bodies) == {"confirmed": 5, "waitlisted": 25}
        by_sequence = sorted(bodies, key=lambda b: b["sequence"])
        assert [b["sequence"] for b in by_sequence] == list(range(1, 31))
        assert [b["status"] for b in by_sequence] == ["confirmed"] * 5 + ["waitlisted"] * 25
        assert [b["waitlist_position"] for b in by_sequence[5:]] == list(range(1, 26))

        # Every confirmed citizen cancels at once: exactly five promotions, in order.
        confirmed = [b for b in bodies if b["status"] == "confirmed"]
        owners = {b["id"]: n for n, b in enumerate(bodies)}
        cancels = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/enrolments/{b['id']}/cancel",
                    headers=identity_headers(f"c-{owners[b['id']]}", "citizen"),
                )
                for b in confirmed
            )
        )
        assert [r.status_code for r in cancels] == [200] * 5
        listed = (await client.get(f"/api/v1/sessions/{session['id']}/enrolments")).json()
        assert [e["status"] for e in listed] == (
            ["cancelled"] * 5 + ["confirmed"] * 5 + ["waitlisted"] * 20
        )
        assert [e["waitlist_position"] for e in listed[10:]] == list(range(1, 21))

        async with app.state.runtime.database.session() as s:
            rows = (await s.execute(sa.select(OUTBOX.c.event_type))).scalars().all()
        assert Counter(t.split(".")[-2] for t in rows) == {
            "ProgrammePublished": 1,
            "SessionScheduled": 1,
            "EnrolmentConfirmed": 5,
            "EnrolmentWaitlisted": 25,
            "EnrolmentCancelled": 5,
            "WaitlistPromoted": 5,
        }


async def test_enrolments_racing_a_session_cancellation(settings: Settings) -> None:
    """Citizens enrol while two staff cancel the session at once: one SessionCancelled, and
    every enrolment the service accepted before it is in it; none is left active."""
    app = create_app(settings)
    async with (
        running_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers=identity_headers(*STAFF)) as client,
    ):
        session = await scheduled_session(client, capacity=3)

        async def cancel() -> httpx.Response:
            return await client.post(
                f"/api/v1/sessions/{session['id']}/cancel", json={"reason": "The venue is closed."}
            )

        results = await asyncio.gather(
            *(enrol_citizen(client, session, n) for n in range(10)), cancel(), cancel()
        )
        enrolled, cancels = results[:10], results[10:]
        assert [r.status_code for r in cancels] == [200, 200]
        assert {r.status_code for r in enrolled} <= {201, 409}
        accepted = {r.json()["id"] for r in enrolled if r.status_code == 201}
        listed = (await client.get(f"/api/v1/sessions/{session['id']}/enrolments")).json()
        assert {e["id"] for e in listed} == accepted
        assert all(e["status"] == "cancelled" for e in listed)

        async with app.state.runtime.database.session() as s:
            rows = (await s.execute(sa.select(OUTBOX.c.event_type, OUTBOX.c.payload))).all()
        names = Counter(t.split(".")[-2] for t, _ in rows)
        assert names["SessionCancelled"] == 1
        assert names["WaitlistPromoted"] == 0
        [payload] = [p for t, p in rows if ".SessionCancelled." in t]
        assert set(json.loads(payload)["cancelled_enrolment_ids"]) == accepted
