"""inclusion starts on SQLite and PostgreSQL: migrations applied, ready, metrics served."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from inclusion.config import Settings
from inclusion.main import create_app
from servicekit.testing import free_port


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/inclusion.sqlite3"
    factory: Callable[..., str] = request.getfixturevalue("new_postgres_database")
    return factory("inclusion")


def table_names(client: TestClient) -> set[str]:
    db = client.app.state.runtime.db  # type: ignore[attr-defined]

    async def read() -> set[str]:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))

    return client.portal.call(read)  # type: ignore[union-attr]


def test_starts_migrates_and_is_ready(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, messaging_enabled=False,
                              environment="test"))
    with TestClient(app) as client:
        assert {"servicekit_outbox", "servicekit_inbox", "alembic_version"} <= table_names(client)

        live = client.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}

        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert 'service_info{service="inclusion"} 1.0' in metrics.text

        missing = client.get("/api/v1/programmes")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

    # A second start on the same database finds it migrated and starts again.
    with TestClient(create_app(Settings(database_url=database_url, messaging_enabled=False,
                                        environment="test"))) as client:
        assert client.get("/health/ready").status_code == 200


def test_ready_is_503_when_the_database_does_not_answer() -> None:
    url = f"postgresql://mk:pw@127.0.0.1:{free_port()}/inclusion"  # nothing listens there
    app = create_app(Settings(database_url=url, run_migrations=False, messaging_enabled=False,
                              environment="test"))
    with TestClient(app) as client:
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
        assert client.get("/health/live").status_code == 200  # alive, just not ready
