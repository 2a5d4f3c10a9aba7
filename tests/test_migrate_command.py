"""``python -m <service> migrate``: what a deployment's migration job runs before the
services start (with ``<PREFIX>RUN_MIGRATIONS=false``). It brings an empty database to the
newest revision, a second run changes nothing, and no seed data is written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from servicekit.db import Database
from servicekit.migrations import alembic_config

SERVICES = {
    "citizen_services": ("CITIZEN_SERVICES_", "catalogue_service"),
    "inclusion": ("INCLUSION_", "programme"),
    "notifications": ("NOTIFICATIONS_", "template"),
}


def migrate(module: str, database_url: str) -> subprocess.CompletedProcess[str]:
    prefix, _ = SERVICES[module]
    env = {**os.environ, f"{prefix}DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", module, "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("module", sorted(SERVICES))
async def test_migrate_brings_the_database_to_the_newest_revision_and_nothing_else(
    module: str, database_url: str
) -> None:
    first = migrate(module, database_url)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "database at the newest migration" in first.stdout
    again = migrate(module, database_url)  # idempotent: a job may run twice
    assert again.returncode == 0, again.stderr[-2000:]

    migrations = __import__(f"{module}.main", fromlist=["MIGRATIONS"]).MIGRATIONS
    head = ScriptDirectory.from_config(alembic_config(migrations)).get_current_head()
    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            versions = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [head]
            _, table = SERVICES[module]
            rows = (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert rows == 0  # no seed data: that is the service's start-up, not the job's
    finally:
        await database.dispose()
