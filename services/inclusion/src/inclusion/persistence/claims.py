"""Scheduler claims: a job fires once, whatever the number of instances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from inclusion.persistence.tables import SchedulerClaim
from servicekit.repository import Repository


class ClaimRepository(Repository):
    async def claim(self, kind: str, key: str, now: datetime) -> bool:
        """Insert the claim (kind, key) unless it exists (``INSERT … ON CONFLICT DO
        NOTHING``); True when this transaction made it. On PostgreSQL a second transaction
        inserting the same key waits for the first to commit and then inserts nothing."""
        dialect = postgresql if self.db.bind.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(SchedulerClaim)
            .values(kind=kind, key=key, claimed_at=now)
            .on_conflict_do_nothing()
        )
        result = await self.db.execute(statement)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def claimed(self, kind: str) -> set[str]:
        """The keys of ``kind`` already claimed."""
        return set(
            (
                await self.db.execute(
                    select(col(SchedulerClaim.key)).where(col(SchedulerClaim.kind) == kind)
                )
            ).scalars()
        )
