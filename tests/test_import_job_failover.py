"""Catalogue import jobs across replicas, as deployed: two citizen-services processes on one
PostgreSQL database. A job is claimed by one of them only; SIGKILL that one half-way and the
other claims the job again once its heartbeat is stale, goes on from the last staged batch,
and every entry of the file is in the catalogue exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from citizen_services.persistence.tables import CatalogueImportJob, CatalogueService
from mkinfra._proc import kill_group, tail, terminate_group
from mkinfra.testing import free_ports
from servicekit.db import Database
from servicekit.testing import STAFF, eventually, identity_headers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROWS = 200


def _claims(log: Path, job_id: str) -> int:
    return tail(log, 2000).count(f"claimed job {job_id}")


async def test_a_killed_replicas_import_job_is_finished_by_the_other(
    new_postgres_database: Any, tmp_path: Path
) -> None:
    database_url = new_postgres_database("import_failover")
    procs: list[tuple[subprocess.Popen[bytes], Path, str]] = []
    db = Database(database_url)
    try:
        for port in free_ports(2):
            log = tmp_path / f"citizen-services-{port}.log"
            env = {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "CITIZEN_SERVICES_PORT": str(port),
                "CITIZEN_SERVICES_DATABASE_URL": database_url,
                "CITIZEN_SERVICES_ENVIRONMENT": "test",
                "CITIZEN_SERVICES_LOG_LEVEL": "INFO",
                "CITIZEN_SERVICES_MESSAGING_ENABLED": "false",
                "CITIZEN_SERVICES_SEED_DATA": "false",
                # 10 batches, each followed by a pause: the job runs for seconds
                "CITIZEN_SERVICES_IMPORT_BATCH_SIZE": "20",
                "CITIZEN_SERVICES_IMPORT_BATCH_PAUSE_SECONDS": "0.5",
                "CITIZEN_SERVICES_IMPORT_STALE_SECONDS": "3",
                "CITIZEN_SERVICES_IMPORT_IDLE_SECONDS": "0.5",
            }
            with log.open("ab") as out:
                proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                    [sys.executable, "-m", "citizen_services"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append((proc, log, f"http://127.0.0.1:{port}"))

        async with httpx.AsyncClient(timeout=30, headers=identity_headers(*STAFF)) as client:

            async def ready() -> bool:
                for proc, log, url in procs:
                    assert proc.poll() is None, tail(log, 40)
                    try:
                        if (await client.get(url + "/health/live")).status_code != 200:
                            return False
                    except httpx.HTTPError:
                        return False
                return True

            await eventually(ready, timeout=180, interval=0.5, message="services did not start")
            tag = uuid.uuid4().hex[:8]
            body = [{"name": f"Failover {tag} {i:03d}"} for i in range(ROWS)]
            started = await client.post(procs[0][2] + "/api/v1/services/import-jobs", json=body)
            assert started.status_code == 202, started.text
            job_id = started.json()["id"]
            location = procs[1][2] + started.headers["location"]  # any replica answers

            async def half_way() -> bool:
                job = (await client.get(location)).json()
                assert job["status"] in ("queued", "running"), job
                return 0 < job["rows_done"] < ROWS

            await eventually(half_way, timeout=120, interval=0.1, message="no progress")
            runners = [i for i, (_, log, _) in enumerate(procs) if _claims(log, job_id)]
            assert len(runners) == 1, runners  # one replica runs it
            runner = runners[0]
            kill_group(procs[runner][0])  # SIGKILL: no clean hand-back
            survivor = procs[1 - runner]

            async def succeeded() -> bool:
                job = (await client.get(survivor[2] + started.headers["location"])).json()
                assert job["status"] != "failed", job
                return bool(job["status"] == "succeeded")

            await eventually(succeeded, timeout=180, interval=0.2, message="not picked up")
            assert _claims(survivor[1], job_id) == 1, tail(survivor[1], 40)

        async with db.read_session() as s:
            names = (
                (
                    await s.execute(
                        sa.select(col(CatalogueService.name)).where(
                            col(CatalogueService.name).like(f"Failover {tag} %")
                        )
                    )
                )
                .scalars()
                .all()
            )
            attempts = (
                await s.execute(
                    sa.select(col(CatalogueImportJob.attempts)).where(
                        col(CatalogueImportJob.id) == uuid.UUID(job_id)
                    )
                )
            ).scalar_one()
        assert sorted(names) == sorted(r["name"] for r in body)  # each once, none lost
        assert attempts == 2
    finally:
        await db.dispose()
        for proc, _, _ in procs:
            await asyncio.to_thread(terminate_group, proc, 20)
