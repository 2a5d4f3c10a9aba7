"""Fixtures for notifications: a migrated database on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from notifications.main import MIGRATIONS
from servicekit.db import Database
from servicekit.migrations import upgrade


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The service's database with its migrations applied (no app, no workers running)."""
    database = Database(database_url)
    await upgrade(database, MIGRATIONS)
    yield database
    await database.dispose()
