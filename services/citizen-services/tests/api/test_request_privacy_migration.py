"""Migration 0007 on SQLite and PostgreSQL: requests that came through Open311 (no
citizen) stay public, citizens' reports become private, notes written before it become
internal; it downgrades and upgrades again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from citizen_services.main import MIGRATIONS
from servicekit.db import Database
from servicekit.migrations import alembic_config


async def _run(
    url: str, step: str, revision: str, sql: list[tuple[str, dict[str, object]]]
) -> list[tuple[object, ...]]:
    """Move the database to ``revision`` (``step``: upgrade or downgrade), then run ``sql``;
    the rows of the last statement."""
    db = Database(url)

    def work(conn: Connection) -> list[tuple[object, ...]]:
        cfg = alembic_config(MIGRATIONS)
        cfg.attributes["connection"] = conn
        getattr(command, step)(cfg, revision)
        rows: list[tuple[object, ...]] = []
        for text, params in sql:
            result = conn.execute(sa.text(text), params)
            rows = [tuple(r) for r in result] if result.returns_rows else []
        return rows

    try:
        async with db.engine.connect() as conn:
            rows = await conn.run_sync(work)
            await conn.commit()
        return rows
    finally:
        await db.dispose()


async def test_0007_backfills_public_and_note_visibility(database_url: str) -> None:
    now = datetime.now(UTC)
    service, partners, citizens = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    request = (
        "INSERT INTO service_request (id, service_id, service_code, status, "
        "description, citizen_id, contact_consent, version, created_at, updated_at) "
        "VALUES (:id, :service, 'fly', 'open', 'text', :citizen, false, 1, :now, :now)"
    )
    update = (
        "INSERT INTO service_request_update (request_id, status, previous_status, note, "
        "occurred_at) VALUES (:id, 'fixed', 'open', :note, :now)"
    )
    await _run(
        database_url,
        "upgrade",
        "0006",
        [
            (
                "INSERT INTO catalogue_service (id, name, description, slug, service_code, status, "
                "version, created_at, updated_at) VALUES (:id, 'Fly', '', 'fly', 'fly', "
                "'published', 1, :now, :now)",
                {"id": service.hex, "now": now},
            ),
            (request, {"id": partners.hex, "service": service.hex, "citizen": None, "now": now}),
            (
                request,
                {"id": citizens.hex, "service": service.hex, "citizen": "citizen-1", "now": now},
            ),
            (update, {"id": citizens.hex, "note": "Safeguarding", "now": now}),
            (update, {"id": partners.hex, "note": None, "now": now}),
        ],
    )
    publicity = "SELECT citizen_id, public FROM service_request ORDER BY citizen_id"
    notes = "SELECT note, note_visibility FROM service_request_update ORDER BY note"
    rows = await _run(database_url, "upgrade", "head", [(publicity, {})])
    assert [(c, bool(p)) for c, p in rows] in (
        [(None, True), ("citizen-1", False)],
        [("citizen-1", False), (None, True)],
    )
    rows = await _run(database_url, "upgrade", "head", [(notes, {})])
    assert sorted(rows, key=str) == sorted([("Safeguarding", "internal"), (None, None)], key=str)
    await _run(database_url, "downgrade", "0006", [])
    rows = await _run(database_url, "upgrade", "head", [(publicity, {})])
    assert len(rows) == 2
