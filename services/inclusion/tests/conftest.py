"""Fixtures for inclusion: every API test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from inclusion.config import Settings
from inclusion.main import create_app
from servicekit.messaging.tables import OutboxMessage
from servicekit.testing import STAFF, identity_headers

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        seed_data=False,
        scheduler_enabled=False,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with its lifespan run (migrations applied), messaging off, no seed data;
    requests carry a staff member's identity assertion, as the gateway would forward it."""
    with TestClient(create_app(settings), headers=identity_headers(*STAFF)) as c:
        yield c


def citizen(n: int = 1) -> dict[str, str]:
    return identity_headers(f"citizen-{n}", "citizen")


def soon(hours: float = 24) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def run(client: TestClient, fn: Callable[[Any], Any]) -> Any:
    """Run ``await fn(session)`` on the app's loop, in a session of its database."""
    db = client.app.state.runtime.database  # type: ignore[attr-defined]

    async def call() -> Any:
        async with db.session() as s:
            result = await fn(s)
            await s.commit()
            return result

    return client.portal.call(call)  # type: ignore[union-attr]


def outbox_types(client: TestClient) -> list[str]:
    """The short event names in the outbox, in order."""

    async def read(s: Any) -> list[str]:
        rows = await s.execute(sa.select(OUTBOX.c.event_type).order_by(OUTBOX.c.id))
        return [t.split(".")[-2] for t in rows.scalars()]

    return run(client, read)  # type: ignore[no-any-return]


def make_programme(client: TestClient, *, publish: bool = True, **body: Any) -> dict[str, Any]:
    body = {
        "title": "Getting started online",
        "kind": "digital-skills-course",
        "delivered_by": "MK Libraries",
        **body,
    }
    r = client.post("/api/v1/programmes", json=body)
    assert r.status_code == 201, r.text
    if publish:
        r = client.post(f"/api/v1/programmes/{r.json()['id']}/status", json={"status": "published"})
        assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def make_venue(client: TestClient, **body: Any) -> dict[str, Any]:
    body = {
        "name": "Milton Keynes Central Library",
        "address": "555 Silbury Boulevard",
        "postcode": "MK9 3HL",
        "ward": "Central Milton Keynes",
        "latitude": 52.0431,
        "longitude": -0.7563,
        **body,
    }
    r = client.post("/api/v1/venues", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def make_session(
    client: TestClient,
    *,
    capacity: int = 2,
    programme: dict[str, Any] | None = None,
    venue: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    programme = programme or make_programme(client)
    venue = venue or make_venue(client)
    starts = soon()
    body = {
        "programme_id": programme["id"],
        "venue_id": venue["id"],
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": capacity,
        **body,
    }
    r = client.post("/api/v1/sessions", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
