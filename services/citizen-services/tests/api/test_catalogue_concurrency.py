"""Concurrent creates with the same slug: one wins, the others get a 409 problem (not a 500)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from citizen_services.config import Settings
from citizen_services.main import create_app
from servicekit.testing import STAFF, identity_headers, running_app


async def test_concurrent_duplicate_creates_are_409_not_500(settings: Settings) -> None:
    async with (
        running_app(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=identity_headers(*STAFF)) as client,
    ):
        responses = await asyncio.gather(
            *(client.post("/api/v1/services", json={"name": "Parking permit"}) for _ in range(12))
        )
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: 11}, [r.text for r in responses if r.status_code == 500]
        for r in responses:
            if r.status_code == 409:
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["type"].endswith("/duplicate-service")


async def test_concurrent_publishes_emit_exactly_one_event(settings: Settings) -> None:
    import sqlalchemy as sa

    from servicekit.messaging.tables import OutboxMessage

    app = create_app(settings)
    staff = identity_headers(*STAFF)
    async with (
        running_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=staff) as client,
    ):
        created = await client.post("/api/v1/services", json={"name": "Library card"})
        service_id = created.json()["id"]
        responses = await asyncio.gather(
            *(client.post(f"/api/v1/services/{service_id}/publish") for _ in range(10))
        )
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 1, 409: 9}, statuses
        final = (await client.get(f"/api/v1/services/{service_id}")).json()
        assert final["version"] == 2
        async with app.state.runtime.database.session() as db:
            rows = (await db.execute(sa.select(OutboxMessage.message_key))).scalars().all()
        assert rows == [service_id]
