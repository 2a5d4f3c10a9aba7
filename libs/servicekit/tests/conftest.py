"""Fixtures for servicekit's tests: a service-like database (SQLite or PostgreSQL) holding
the outbox, the inbox and an ``effect`` table that handlers write to."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from servicekit.db import Database
from servicekit.messaging.tables import InboxMessage, OutboxMessage

effects_metadata = sa.MetaData()
effect_table = sa.Table(
    "effect",
    effects_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("tag", sa.String(200), nullable=False),
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda c: OutboxMessage.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]
        await conn.run_sync(lambda c: InboxMessage.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]
        await conn.run_sync(effects_metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def tag() -> str:
    """A unique marker so a test counts only the events it made (topics are shared)."""
    return f"t{uuid.uuid4().hex[:12]}"
