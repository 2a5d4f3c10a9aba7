"""Import jobs: accepted at once (202 + Location), run in the background all or nothing,
progress readable; claimed once among replicas; a dead replica's job picked up.

The service runs with its own worker off (``import_worker=False``) where a test drives the
workers itself, one step (claim, a staged batch, the swap) per ``run_once``: each worker has
its own ``Database`` (engine and connections), as a replica would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from citizen_services.api import bulk
from citizen_services.application.imports import ImportJobWorker
from citizen_services.config import Settings
from citizen_services.main import create_app
from citizen_services.persistence.tables import CatalogueImportJob, catalogue_import_row
from servicekit.db import Database
from servicekit.errors import PROBLEM_JSON
from servicekit.testing import STAFF, identity_headers, running_app

JOBS = "/api/v1/services/import-jobs"


def records(n: int, prefix: str = "Imported service") -> list[dict[str, Any]]:
    return [
        {"name": f"{prefix} {i:03d}", "keywords": ["bulk"], "channels": {"phone": "01908 252570"}}
        for i in range(1, n + 1)
    ]


@asynccontextmanager
async def service(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=overrides))
    async with (
        running_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers=identity_headers(*STAFF)) as client,
    ):
        yield client


@asynccontextmanager
async def replica(settings: Settings, **options: Any) -> AsyncIterator[ImportJobWorker]:
    """A worker of another process: its own engine; not started (the test steps it)."""
    database = Database(settings.database_url)
    worker = ImportJobWorker(
        database, source="test", command_of=bulk.command, **({"batch_size": 10} | options)
    )
    try:
        yield worker
    finally:
        await worker.close()
        await database.dispose()


async def start(client: httpx.AsyncClient, body: list[dict[str, Any]]) -> str:
    r = await client.post(JOBS, json=body)
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert location == f"{JOBS}/{r.json()['id']}"
    assert r.json()["status"] == "queued" and r.json()["rows_total"] == len(body)
    return location


async def names_in_catalogue(client: httpx.AsyncClient) -> list[str]:
    return sorted(s["name"] for s in (await client.get("/api/v1/services/export")).json())


async def staged_rows(settings: Settings) -> int:
    database = Database(settings.database_url)
    try:
        async with database.read_session() as db:
            return int(
                (
                    await db.execute(sa.select(sa.func.count()).select_from(catalogue_import_row))
                ).scalar_one()
            )
    finally:
        await database.dispose()


async def test_a_job_is_accepted_at_once_and_its_progress_moves(settings: Settings) -> None:
    async with service(settings, import_worker=False) as client, replica(settings) as worker:
        location = await start(client, records(35))
        seen = [(await client.get(location)).json()]
        while await worker.run_once():
            seen.append((await client.get(location)).json())
        assert [j["rows_done"] for j in seen] == [0, 0, 10, 20, 30, 35, 35]
        assert [j["status"] for j in seen] == ["queued"] + ["running"] * 5 + ["succeeded"]
        # nothing is in the catalogue until the last step
        done = seen[-1]
        assert done["started_at"] and done["finished_at"] and done["error"] is None
        assert [s["name"] for s in done["services"]] == [r["name"] for r in records(35)]
        assert done["service_ids"] == [s["id"] for s in done["services"]]
        assert await names_in_catalogue(client) == [r["name"] for r in records(35)]
        one = (await client.get(f"/api/v1/services/{done['service_ids'][0]}")).json()
        assert one["status"] == "draft" and one["channels"]["phone"] == "01908 252570"
        history = (await client.get(f"/api/v1/services/{one['id']}/history")).json()
        assert [(h["action"], h["actor"]) for h in history] == [("created", STAFF[0])]
        found = await client.get(
            "/api/v1/services", params={"q": "Imported service 007", "status": "draft"}
        )
        assert done["service_ids"][6] in [s["id"] for s in found.json()["items"]]
        assert await staged_rows(settings) == 0


@pytest.mark.parametrize("clash_row", [5, 25])
async def test_a_row_refused_when_written_fails_the_job_and_imports_nothing(
    settings: Settings, clash_row: int
) -> None:
    """Row 5 is already staged when its slug is taken (the catalogue's unique index refuses
    the swap); row 25 is not yet (its batch finds it taken)."""
    async with service(settings, import_worker=False) as client, replica(settings) as worker:
        location = await start(client, records(35))
        assert await worker.run_once() and await worker.run_once()  # claimed, 10 staged
        assert (await client.get(location)).json()["rows_done"] == 10
        taken = await client.post(
            "/api/v1/services",
            json={
                "name": "Someone else's",
                "slug": f"imported-service-{clash_row:03d}",
                "service_code": "someone-elses",
            },
        )
        assert taken.status_code == 201, taken.text
        while await worker.run_once():
            pass
        job = (await client.get(location)).json()
        assert job["status"] == "failed", job
        assert "nothing was imported" in job["error"]
        assert {(e["row"], e["field"]) for e in job["errors"]} == {(clash_row, "slug")}
        assert job["services"] == [] and job["service_ids"] == []
        assert await names_in_catalogue(client) == ["Someone else's"]
        assert await staged_rows(settings) == 0


async def test_a_second_replica_does_not_run_the_same_job(settings: Settings) -> None:
    async with (
        service(settings, import_worker=False) as client,
        replica(settings) as one,
        replica(settings) as two,
    ):
        location = await start(client, records(30))
        claims = await asyncio.gather(one.run_once(), two.run_once())
        assert sorted(claims) == [0, 1]  # one replica claimed it, the other found nothing
        runner, idle = (one, two) if claims[0] else (two, one)
        while await runner.run_once():
            assert await idle.run_once() == 0
        job = (await client.get(location)).json()
        assert job["status"] == "succeeded" and job["rows_done"] == 30
        assert len(await names_in_catalogue(client)) == 30


async def test_a_job_of_a_replica_that_died_is_picked_up(settings: Settings) -> None:
    async with (
        service(settings, import_worker=False) as client,
        replica(settings) as dead,
        replica(settings, stale_seconds=30) as live,
    ):
        location = await start(client, records(30))
        assert await dead.run_once() and await dead.run_once()  # claimed, 10 staged
        assert await live.run_once() == 0  # its heartbeat is fresh: not taken
        # the replica dies (it runs no more passes) and its heartbeat grows old
        await _age_heartbeat(settings, seconds=120)
        assert await live.run_once() == 1  # claimed again
        job = (await client.get(location)).json()
        assert job["status"] == "running" and job["rows_done"] == 10
        while await live.run_once():
            pass
        job = (await client.get(location)).json()
        assert job["status"] == "succeeded" and len(job["service_ids"]) == 30
        # the dead replica's next pass finds its claim gone and changes nothing
        assert await dead.run_once() == 1
        assert (await client.get(location)).json()["status"] == "succeeded"
        assert len(await names_in_catalogue(client)) == 30


async def _age_heartbeat(settings: Settings, *, seconds: float) -> None:
    database = Database(settings.database_url)
    try:
        async with database.session() as db:
            await db.execute(
                sa.update(CatalogueImportJob.__table__).values(  # type: ignore[attr-defined]
                    heartbeat_at=datetime.now(UTC) - timedelta(seconds=seconds)
                )
            )
            await db.commit()
    finally:
        await database.dispose()


async def test_a_job_interrupted_too_often_fails(settings: Settings) -> None:
    async with (
        service(settings, import_worker=False) as client,
        replica(settings, max_attempts=2) as worker,
    ):
        location = await start(client, records(30))
        for _ in range(2):
            assert await worker.run_once() == 1
            worker._job = None  # this "process" died after its claim
            await _age_heartbeat(settings, seconds=120)
        assert await worker.run_once() == 1
        job = (await client.get(location)).json()
        assert job["status"] == "failed" and "interrupted 2 times" in job["error"]
        assert await names_in_catalogue(client) == []


async def test_a_stopping_replica_gives_its_job_back(settings: Settings) -> None:
    async with service(settings, import_worker=False) as client:
        location = await start(client, records(30))
        async with replica(settings) as worker:
            assert await worker.run_once() and await worker.run_once()
        job = (await client.get(location)).json()  # closed: given back
        assert job["status"] == "queued" and job["rows_done"] == 10
        async with replica(settings) as worker:
            while await worker.run_once():
                pass
        assert (await client.get(location)).json()["status"] == "succeeded"


async def test_the_service_runs_its_jobs_itself(settings: Settings) -> None:
    async with service(settings, import_batch_size=7) as client:
        location = await start(client, records(40))
        deadline = time.monotonic() + 120
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = (await client.get(location)).json()
            if job["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        assert job["status"] == "succeeded", job
        assert len(await names_in_catalogue(client)) == 40


async def test_bad_files_are_refused_before_a_job_is_queued(settings: Settings) -> None:
    async with service(settings, import_worker=False) as client:
        r = await client.post(
            JOBS,
            content=b"name,lgsl_codes\nGood,1\n,2\nBad,x\n",
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM_JSON
        assert {(e["row"], e["field"].split(".")[0]) for e in r.json()["errors"]} == {
            (2, "name"),
            (3, "lgsl_codes"),
        }
        await client.post("/api/v1/services", json={"name": "Blue badge"})
        r = await client.post(JOBS, json=[{"name": "Blue badge"}])
        assert r.status_code == 422
        assert {(e["row"], e["field"]) for e in r.json()["errors"]} == {
            (1, "slug"),
            (1, "service_code"),
        }
        r = await client.post(JOBS, content=b"name\nx\n", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        missing = await client.get(f"{JOBS}/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM_JSON
        assert (await client.get(f"{JOBS}/not-an-id")).status_code == 422
        anonymous = await client.get(
            f"{JOBS}/00000000-0000-0000-0000-000000000000", headers={"X-MK-Identity": ""}
        )
        assert anonymous.status_code in (401, 403)
