"""Alembic migrations per service, applied at start-up.

Each service keeps ``persistence/migrations/`` (``env.py`` calling :func:`run_env`, and
``versions/``). :func:`upgrade` runs ``alembic upgrade head`` on the service's own database;
on PostgreSQL an advisory lock keeps two replicas from migrating at once.
"""

from __future__ import annotations

import zlib
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import MetaData

from servicekit.db import Database


def alembic_config(script_location: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(database: Database, script_location: str) -> None:
    """Bring the database to the newest revision."""
    async with database.engine.connect() as conn:
        await conn.run_sync(_upgrade, script_location, database.is_postgres)
        await conn.commit()


def _upgrade(conn: Connection, script_location: str, lock: bool) -> None:
    if lock:
        key = zlib.crc32(script_location.encode())
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
    try:
        cfg = alembic_config(script_location)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    finally:
        if lock:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def run_env(context: Any, target_metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(context, connection, target_metadata)
        return
    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///var/alembic.sqlite3"
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg"))
    with engine.connect() as conn:
        _run(context, conn, target_metadata)


def _run(context: Any, connection: Connection, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
