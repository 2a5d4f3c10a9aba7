"""The day-before reminder fires once per session, even with two scheduler instances running
against the same database at the same time (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from inclusion.application.scheduler import send_due_reminders
from inclusion.config import Settings
from servicekit.db import Database
from servicekit.messaging.tables import OutboxMessage

from ..conftest import citizen, make_programme, make_session, make_venue

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def test_two_instances_emit_each_reminder_exactly_once(
    client: TestClient, settings: Settings
) -> None:
    programme, venue = make_programme(client), make_venue(client)
    now = datetime.now(UTC)
    due = [
        make_session(
            client,
            programme=programme,
            venue=venue,
            starts_at=(now + timedelta(hours=h)).isoformat(),
            ends_at=(now + timedelta(hours=h + 1)).isoformat(),
        )
        for h in (2, 12, 23)
    ]
    later = make_session(
        client,
        programme=programme,
        venue=venue,
        starts_at=(now + timedelta(hours=30)).isoformat(),
        ends_at=(now + timedelta(hours=31)).isoformat(),
    )
    client.post(
        f"/api/v1/sessions/{due[0]['id']}/enrolments", json={"consent": True}, headers=citizen(7)
    )

    async def two_instances() -> list[int]:
        # Two processes' worth of engines on the same database, ticking together, twice.
        dbs = [Database(settings.database_url) for _ in range(2)]
        try:
            emitted = []
            for _ in range(2):
                emitted += await asyncio.gather(
                    *(send_due_reminders(db, source="test") for db in dbs)
                )
            return emitted
        finally:
            for db in dbs:
                await db.dispose()

    emitted = client.portal.call(two_instances)  # type: ignore[union-attr]
    assert sum(emitted) == 3

    db = client.app.state.runtime.database  # type: ignore[attr-defined]

    async def reminders() -> list[tuple[str, str]]:
        async with db.session() as s:
            rows = await s.execute(
                sa.select(OUTBOX.c.message_key, OUTBOX.c.payload).where(
                    OUTBOX.c.event_type.like("%SessionReminderDue%")
                )
            )
            return [(k, p) for k, p in rows.all()]

    rows = client.portal.call(reminders)  # type: ignore[union-attr]
    assert Counter(k for k, _ in rows) == {s["id"]: 1 for s in due}
    assert later["id"] not in {k for k, _ in rows}
    first = next(p for k, p in rows if k == due[0]["id"])
    assert '"citizen_ids":["citizen-7"]' in first
