"""inclusion starts on SQLite and PostgreSQL: migrations applied, ready, metrics served;
seed data on the first start only."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from inclusion.config import Settings
from inclusion.main import create_app
from servicekit.testing import free_port


def table_names(client: TestClient) -> set[str]:
    db = client.app.state.runtime.database  # type: ignore[attr-defined]

    async def read() -> set[str]:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))

    return client.portal.call(read)  # type: ignore[union-attr]


def test_starts_migrates_and_is_ready(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert {
            "servicekit_outbox",
            "servicekit_inbox",
            "alembic_version",
            "programme",
            "venue",
            "programme_session",
            "participant",
            "enrolment",
        } <= table_names(client)

        live = client.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}

        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert 'service_info{service="inclusion"} 1.0' in metrics.text

        assert client.get("/api/v1/programmes").json() == []  # seed_data off
        missing = client.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

    # A second start on the same database finds it migrated and starts again.
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").status_code == 200


def test_seed_data_on_first_start_only(settings: Settings) -> None:
    seeded = settings.model_copy(update={"seed_data": True})
    with TestClient(create_app(seeded)) as client:
        programmes = client.get("/api/v1/programmes").json()
        assert {p["kind"] for p in programmes} == {
            "digital-skills-course",
            "device-lending",
            "connectivity",
            "drop-in-help",
        }
        assert all(p["status"] == "published" for p in programmes)
        venues = client.get("/api/v1/venues").json()
        assert len({v["ward"] for v in venues}) >= 10
        sessions = client.get("/api/v1/sessions").json()
        assert len(sessions) >= 20
        first = (len(programmes), len(venues), len(sessions))
    with TestClient(create_app(seeded)) as client:  # not seeded twice
        assert (
            len(client.get("/api/v1/programmes").json()),
            len(client.get("/api/v1/venues").json()),
            len(client.get("/api/v1/sessions").json()),
        ) == first


def test_ready_is_503_when_the_database_does_not_answer() -> None:
    url = f"postgresql://mk:pw@127.0.0.1:{free_port()}/inclusion"  # nothing listens there
    app = create_app(
        Settings(
            database_url=url,
            run_migrations=False,
            messaging_enabled=False,
            environment="test",
            seed_data=False,
        )
    )
    with TestClient(app) as client:
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
        assert client.get("/health/live").status_code == 200  # alive, just not ready
