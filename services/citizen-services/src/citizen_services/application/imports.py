"""Catalogue import jobs: an import accepted at once and run in the background, all or
nothing, with its progress readable.

``start_import`` checks the whole file as the synchronous import does (every bad record
named, nothing queued) and queues a job holding the records. :class:`ImportJobWorker` (one
per process) claims a job in the database (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: with
several replicas each job runs once), then stages its entries a batch at a time in
``catalogue_import_row``, each batch in its own short transaction that also records
``rows_done`` and renews the claim's heartbeat: readers see the progress, and SQLite's
other writers get in between batches. When every row is staged, one transaction copies
them into the catalogue (with their "created" history rows) and marks the job succeeded:
the catalogue changes all at once or not at all. A row the database refuses then (a slug or
service_code taken since the job was accepted) rolls the copy back and fails the job,
naming the row; so does anything else that goes wrong, with the reason.

A job whose replica died (its heartbeat older than ``import_stale_seconds``) is claimed
again by any replica and goes on from its last staged batch; after ``import_max_attempts``
claims it fails. A process that stops cleanly gives its job back to the queue.

No event is published: an imported entry is a draft, and as with one created by
``POST /api/v1/services`` its events start when it is published.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from citizen_services.application.catalogue import (
    CreateService,
    check_import,
    draft_row,
    taken_errors,
)
from citizen_services.domain.imports import ImportJobNotFound, JobStatus
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.imports import ImportJobRepository
from citizen_services.persistence.tables import CatalogueImportJob
from servicekit.db import Database
from servicekit.uow import UnitOfWork
from servicekit.worker import CommitWokenWorker

log = logging.getLogger(__name__)

#: Makes a record of a job (as stored) into its command again (the API's validation).
CommandOf = Callable[[dict[str, Any], str | None], CreateService]


async def start_import(
    *,
    uow: UnitOfWork,
    entries: CatalogueRepository,
    jobs: ImportJobRepository,
    records: list[dict[str, Any]],
    commands: list[CreateService],
    actor: str | None,
) -> CatalogueImportJob:
    """Queue a job for ``records`` (their ``commands`` checked first: a slug or code taken
    names its record and nothing is queued)."""
    await check_import(entries=entries, commands=commands)
    job = CatalogueImportJob(
        status=JobStatus.QUEUED.value,
        records=records,
        rows_total=len(records),
        created_by=actor,
        created_at=datetime.now(UTC),
    )
    jobs.add(job)
    return job


async def find_job(*, jobs: ImportJobRepository, job_id: uuid.UUID) -> Mapping[str, Any]:
    job = await jobs.view(job_id)
    if job is None:
        raise ImportJobNotFound(f"No import job with id {job_id}.")
    return job


class ClaimLost(Exception):
    """Another process claimed the job (this one was taken for dead)."""


class ImportJobWorker(CommitWokenWorker):
    """Runs import jobs, one at a time per process; each pass is one step (claim, stage a
    batch, or swap in), so a job's progress is committed batch by batch."""

    name = "catalogue-import"
    wake_on = frozenset({CatalogueImportJob.__tablename__})

    def __init__(
        self,
        database: Database,
        *,
        source: str,
        command_of: CommandOf,
        batch_size: int = 50,
        batch_pause_seconds: float = 0.0,
        stale_seconds: float = 60.0,
        max_attempts: int = 3,
        idle_seconds: float = 5.0,
    ) -> None:
        super().__init__(database, idle_seconds=idle_seconds)
        self.source = source
        self.command_of = command_of
        self.batch_size = batch_size
        self.batch_pause_seconds = batch_pause_seconds
        self.stale_seconds = stale_seconds
        self.max_attempts = max_attempts
        #: The job in hand: (id, claim token, records, actor, rows staged).
        self._job: dict[str, Any] | None = None

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self.database, source=self.source)

    async def run_once(self) -> int:
        if self._job is None:
            return await self._claim()
        job = self._job
        try:
            if job["rows_done"] < len(job["records"]):
                await self._stage_batch(job)
                # let the process's requests in between batches (SQLite's statements run on
                # the event loop's thread: without this, a job would hold the loop to its end)
                await asyncio.sleep(self.batch_pause_seconds)
            else:
                await self._swap_in(job)
        except ClaimLost:
            log.warning("%s: job %s was claimed by another process", self.name, job["id"])
            self._job = None
        except Exception:
            log.exception("%s: job %s failed", self.name, job["id"])
            await self._fail(job, "The import stopped on an unexpected error: nothing imported.")
        return 1

    async def _claim(self) -> int:
        now = datetime.now(UTC)
        stale = now - timedelta(seconds=self.stale_seconds)
        async with self.database.read_session() as db:
            if not await ImportJobRepository(db).any_due(stale=stale):
                return 0
        token = uuid.uuid4()
        async with self._uow() as uow:
            row = await ImportJobRepository(uow.db).claim(token=token, now=now, stale=stale)
        if row is None:
            return 0
        job = {
            "id": row["id"],
            "token": token,
            "records": row["records"] or [],
            "actor": row["created_by"],
            "rows_done": row["rows_done"],
        }
        log.info("%s: claimed job %s (attempt %s)", self.name, row["id"], row["attempts"])
        if row["attempts"] > self.max_attempts:
            await self._fail(
                job,
                f"The import was interrupted {row['attempts'] - 1} times: nothing was imported.",
            )
            return 1
        self._job = job
        return 1

    async def _stage_batch(self, job: dict[str, Any]) -> None:
        start = job["rows_done"]
        records = job["records"][start : start + self.batch_size]
        now = datetime.now(UTC)
        staged: list[dict[str, Any]] = []
        for row, record in enumerate(records, start=start + 1):
            columns, snapshot = draft_row(self.command_of(record, job["actor"]), now=now)
            staged.append(
                columns
                | {
                    "job_id": job["id"],
                    "row": row,
                    "actor": job["actor"],
                    "changed_fields": [],
                    "snapshot": snapshot,
                }
            )
        async with self._uow() as uow:
            jobs = ImportJobRepository(uow.db)
            slugs, codes = await jobs.taken(
                (r["slug"] for r in staged), (r["service_code"] for r in staged)
            )
            errors = [
                e
                for r in staged
                for e in taken_errors(
                    r["row"], r["slug"], r["service_code"], slugs=slugs, codes=codes
                )
            ]
            if not errors:
                done = start + len(staged)
                # the claim first: on PostgreSQL it locks the job's row until the commit
                if not await jobs.progress(job["id"], job["token"], rows_done=done, now=now):
                    raise ClaimLost
                await jobs.stage(staged)
        if errors:
            await self._fail(job, _taken_reason(errors), errors)
            return
        job["rows_done"] = done

    async def _swap_in(self, job: dict[str, Any]) -> None:
        try:
            async with self._uow() as uow:
                jobs = ImportJobRepository(uow.db)
                services = await jobs.staged_entries(job["id"])
                if not await jobs.finish(
                    job["id"],
                    job["token"],
                    status=JobStatus.SUCCEEDED,
                    now=datetime.now(UTC),
                    services=services,
                ):
                    raise ClaimLost
                await jobs.swap_in(job["id"])
        except IntegrityError:
            # a slug or service_code taken since the rows were staged: name them
            async with self.database.read_session() as db:
                staged = await ImportJobRepository(db).staged_keys(job["id"])
                slugs, codes = await ImportJobRepository(db).taken(
                    (s for _, s, _ in staged), (c for _, _, c in staged)
                )
            errors = [
                e
                for row, slug, code in staged
                for e in taken_errors(row, slug, code, slugs=slugs, codes=codes)
            ]
            await self._fail(job, _taken_reason(errors), errors)
            return
        log.info("%s: job %s succeeded (%s entries)", self.name, job["id"], len(services))
        self._job = None

    async def _fail(
        self, job: dict[str, Any], reason: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        """Fail the job (its staged rows dropped): the catalogue is unchanged."""
        self._job = None
        try:
            async with self._uow() as uow:
                jobs = ImportJobRepository(uow.db)
                if await jobs.finish(
                    job["id"],
                    job["token"],
                    status=JobStatus.FAILED,
                    now=datetime.now(UTC),
                    error=reason,
                    errors=errors,
                ):  # (a claim lost meanwhile: the rows are the new claimant's)
                    await jobs.drop_staged(job["id"])
        except Exception:  # the database is away: the job is claimed again once stale
            log.exception("%s: could not record that job %s failed", self.name, job["id"])
        else:
            log.info("%s: job %s failed", self.name, job["id"])

    async def close(self) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        try:
            async with self._uow() as uow:
                await ImportJobRepository(uow.db).release(job["id"], job["token"])
        except Exception:
            log.exception("%s: could not give job %s back", self.name, job["id"])


def _taken_reason(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "A slug or service_code was taken while importing: nothing was imported."
    rows = len({e["row"] for e in errors})
    return (
        f"{rows} row(s) have a slug or service_code that another entry took after the "
        "import was accepted: nothing was imported."
    )
