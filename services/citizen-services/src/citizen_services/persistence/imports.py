"""Import jobs' SQL: the job, its claim (``UPDATE .. RETURNING``; ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so replicas never claim the same job), its staged rows and the swap
that copies them into the catalogue (``INSERT .. SELECT``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from citizen_services.domain.imports import JobStatus
from citizen_services.persistence.tables import (
    CatalogueImportJob,
    CatalogueService,
    CatalogueServiceHistory,
    catalogue_import_row,
)
from servicekit.repository import Repository

JOB = CatalogueImportJob.__table__  # type: ignore[attr-defined]
ENTRY = CatalogueService.__table__  # type: ignore[attr-defined]
HISTORY = CatalogueServiceHistory.__table__  # type: ignore[attr-defined]
STAGED = catalogue_import_row
#: The columns a job's reader sees (not its records: up to 5 MB).
VIEW_COLUMNS = [c for c in JOB.c if c.name not in ("records", "claim_token")]
#: The catalogue columns an import stages and copies (the rest take their defaults).
ENTRY_COLUMNS = [c.name for c in STAGED.c if c.name in ENTRY.c]


def _due(stale: datetime) -> Any:
    """Jobs to claim: queued, or running with a heartbeat older than ``stale``."""
    return sa.or_(
        JOB.c.status == JobStatus.QUEUED.value,
        sa.and_(JOB.c.status == JobStatus.RUNNING.value, JOB.c.heartbeat_at < stale),
    )


class ImportJobRepository(Repository):
    async def view(self, job_id: uuid.UUID) -> Mapping[str, Any] | None:
        """The job as its readers see it, or None."""
        row = (await self.db.execute(sa.select(*VIEW_COLUMNS).where(JOB.c.id == job_id))).first()
        return dict(row._mapping) if row else None

    async def any_due(self, *, stale: datetime) -> bool:
        """Whether a job is there to claim (a read: an idle worker's look costs no write
        transaction, nor SQLite's write lock)."""
        found = await self.db.execute(sa.select(JOB.c.id).where(_due(stale)).limit(1))
        return found.first() is not None

    async def claim(
        self, *, token: uuid.UUID, now: datetime, stale: datetime
    ) -> Mapping[str, Any] | None:
        """Claim the oldest queued job, or a running one whose heartbeat is older than
        ``stale`` (its replica died): it is ``running`` under ``token``, attempts counted.
        The row as claimed, or None."""
        due = _due(stale)
        pick = sa.select(JOB.c.id).where(due).order_by(JOB.c.created_at).limit(1)
        if self.db.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(JOB)
            .where(JOB.c.id == pick.scalar_subquery(), due)
            .values(
                status=JobStatus.RUNNING.value,
                claim_token=token,
                heartbeat_at=now,
                started_at=sa.func.coalesce(JOB.c.started_at, now),
                attempts=JOB.c.attempts + 1,
            )
            .returning(*JOB.c)
        )
        row = (await self.db.execute(stmt)).first()
        return dict(row._mapping) if row else None

    async def _update_claimed(self, job_id: uuid.UUID, token: uuid.UUID, **values: Any) -> bool:
        result = await self.db.execute(
            sa.update(JOB)
            .where(
                JOB.c.id == job_id,
                JOB.c.claim_token == token,
                JOB.c.status == JobStatus.RUNNING.value,
            )
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def progress(
        self, job_id: uuid.UUID, token: uuid.UUID, *, rows_done: int, now: datetime
    ) -> bool:
        """Record the rows staged and renew the claim; False if the claim was lost."""
        return await self._update_claimed(job_id, token, rows_done=rows_done, heartbeat_at=now)

    async def finish(
        self,
        job_id: uuid.UUID,
        token: uuid.UUID,
        *,
        status: JobStatus,
        now: datetime,
        services: list[dict[str, Any]] | None = None,
        error: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> bool:
        """End the claimed job (succeeded or failed); False if the claim was lost."""
        return await self._update_claimed(
            job_id,
            token,
            status=status.value,
            finished_at=now,
            heartbeat_at=now,
            claim_token=None,
            records=[],
            services=services or [],
            error=error,
            errors=errors or [],
        )

    async def release(self, job_id: uuid.UUID, token: uuid.UUID) -> bool:
        """Give the claimed job back to the queue (this process is stopping)."""
        return await self._update_claimed(
            job_id, token, status=JobStatus.QUEUED.value, claim_token=None
        )

    async def taken(self, slugs: Iterable[str], codes: Iterable[str]) -> tuple[set[str], set[str]]:
        """Which of ``slugs`` and ``codes`` catalogue entries already have."""
        slugs, codes = list(slugs), list(codes)
        rows = await self.db.execute(
            sa.select(ENTRY.c.slug, ENTRY.c.service_code).where(
                sa.or_(ENTRY.c.slug.in_(slugs), ENTRY.c.service_code.in_(codes))
            )
        )
        found = rows.all()
        return {s for s, _ in found} & set(slugs), {c for _, c in found} & set(codes)

    async def stage(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.db.execute(sa.insert(STAGED), list(rows))

    async def staged_keys(self, job_id: uuid.UUID) -> list[tuple[int, str, str]]:
        """(row, slug, service_code) of the job's staged rows."""
        rows = await self.db.execute(
            sa.select(STAGED.c.row, STAGED.c.slug, STAGED.c.service_code)
            .where(STAGED.c.job_id == job_id)
            .order_by(STAGED.c.row)
        )
        return [(row, slug, code) for row, slug, code in rows.all()]

    async def staged_entries(self, job_id: uuid.UUID) -> list[dict[str, Any]]:
        """{id, name, slug, service_code} of the job's staged rows, in file order."""
        rows = await self.db.execute(
            sa.select(STAGED.c.id, STAGED.c.name, STAGED.c.slug, STAGED.c.service_code)
            .where(STAGED.c.job_id == job_id)
            .order_by(STAGED.c.row)
        )
        return [
            {"id": str(i), "name": name, "slug": slug, "service_code": code}
            for i, name, slug, code in rows.all()
        ]

    async def swap_in(self, job_id: uuid.UUID) -> None:
        """Copy the job's staged rows into the catalogue and their "created" history rows
        (the catalogue's unique slug and code are checked here), then drop them."""
        mine = STAGED.c.job_id == job_id
        await self.db.execute(
            sa.insert(ENTRY).from_select(
                ENTRY_COLUMNS,
                sa.select(*(STAGED.c[name] for name in ENTRY_COLUMNS))
                .where(mine)
                .order_by(STAGED.c.row),
            )
        )
        await self.db.execute(
            sa.insert(HISTORY).from_select(
                [
                    "service_id",
                    "version",
                    "action",
                    "actor",
                    "changed_fields",
                    "snapshot",
                    "occurred_at",
                ],
                sa.select(
                    STAGED.c.id,
                    STAGED.c.version,
                    sa.literal("created", sa.String(20)),
                    STAGED.c.actor,
                    STAGED.c.changed_fields,
                    STAGED.c.snapshot,
                    STAGED.c.created_at,
                )
                .where(mine)
                .order_by(STAGED.c.row),
            )
        )
        await self.drop_staged(job_id)

    async def drop_staged(self, job_id: uuid.UUID) -> None:
        await self.db.execute(sa.delete(STAGED).where(STAGED.c.job_id == job_id))
