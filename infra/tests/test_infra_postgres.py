"""The local PostgreSQL: a throw-away cluster, idempotent database creation, real queries."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from mkinfra.postgres import PostgresServer, database_url, ensure_postgres_installed
from mkinfra.testing import free_port


def test_database_url_replaces_only_the_path() -> None:
    assert (
        database_url("postgresql://u:p@h:5/postgres?sslmode=disable", "x")
        == "postgresql://u:p@h:5/x?sslmode=disable"
    )


@pytest.mark.postgres
async def test_new_database_accepts_queries(
    new_postgres_database: Callable[..., str],
) -> None:
    url = new_postgres_database("infra")
    other = new_postgres_database("infra")
    assert url != other
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        await conn.execute("INSERT INTO t VALUES (1, 'Bletchley')")
        assert await conn.fetchval("SELECT name FROM t WHERE id = 1") == "Bletchley"
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
    finally:
        await conn.close()


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mk-pg-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.postgres
def test_server_lifecycle_and_databases(pg_dir: Path) -> None:
    server = PostgresServer(pg_dir, port=free_port(), bin_dir=ensure_postgres_installed())
    try:
        started = time.monotonic()
        server.start()
        cold = time.monotonic() - started
        assert server.running

        url = server.create_database("lifecycle")
        assert url == server.url("lifecycle")
        assert server.create_database("lifecycle") == url  # idempotent

        async def count_rows() -> int:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS r (x int)")
                await conn.execute("INSERT INTO r VALUES (1)")
                return int(await conn.fetchval("SELECT count(*) FROM r"))
            finally:
                await conn.close()

        from mkinfra._proc import run_sync

        assert run_sync(count_rows()) == 1
        server.stop()
        assert not server.running

        started = time.monotonic()
        server.start()
        restart = time.monotonic() - started
        assert run_sync(count_rows()) == 2  # data survived the restart

        server.drop_database("lifecycle")
        server.drop_database("lifecycle")  # idempotent
        print(f"\nPostgreSQL start: cold (initdb) {cold:.2f}s, restart {restart:.2f}s")
    finally:
        server.stop()
    assert not server.running
