"""``servicekit.db.async_url``: plain URLs onto the async drivers, nothing else changed."""

from __future__ import annotations

import pytest

from servicekit.db import Database, async_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/cs/cs.sqlite3", "sqlite+aiosqlite:///var/cs/cs.sqlite3"),
        ("sqlite:////abs/path/db.sqlite3", "sqlite+aiosqlite:////abs/path/db.sqlite3"),
        ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        (
            "postgresql://mk:s3cret@db.internal:5433/citizen",
            "postgresql+asyncpg://mk:s3cret@db.internal:5433/citizen",
        ),
        ("postgres://mk:pw@localhost/db", "postgresql+asyncpg://mk:pw@localhost/db"),
        ("postgresql+psycopg://mk:pw@localhost/db", "postgresql+asyncpg://mk:pw@localhost/db"),
        ("postgresql+psycopg2://mk:pw@localhost/db", "postgresql+asyncpg://mk:pw@localhost/db"),
        ("postgresql+asyncpg://mk:pw@localhost/db", "postgresql+asyncpg://mk:pw@localhost/db"),
        (
            "postgresql://mk@localhost/db?ssl=require",
            "postgresql+asyncpg://mk@localhost/db?ssl=require",
        ),
    ],
)
def test_async_url(url: str, expected: str) -> None:
    assert async_url(url) == expected


def test_special_characters_in_password_survive() -> None:
    url = "postgresql://mk:p%40ss%2Fw0rd@localhost/db"
    assert async_url(url) == "postgresql+asyncpg://mk:p%40ss%2Fw0rd@localhost/db"


async def test_database_reports_its_dialect(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path}/nested/dir/x.sqlite3")
    try:
        assert db.is_sqlite and not db.is_postgres
        await db.ping()
        assert (tmp_path / "nested" / "dir" / "x.sqlite3").exists()
    finally:
        await db.dispose()
    pg = Database("postgresql://u:p@127.0.0.1:1/db")  # no connection is made
    assert pg.is_postgres and not pg.is_sqlite
    assert pg.url == "postgresql+asyncpg://u:p@127.0.0.1:1/db"
    await pg.dispose()
