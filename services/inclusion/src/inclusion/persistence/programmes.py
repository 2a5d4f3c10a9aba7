"""Programmes and venues: the queries and locks of the catalogue."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlmodel import col

from inclusion.domain.programmes import ProgrammeStatus
from inclusion.persistence.tables import Programme, Venue
from servicekit.repository import Repository

PUBLIC = [ProgrammeStatus.PUBLISHED.value, ProgrammeStatus.CLOSED.value]


class ProgrammeRepository(Repository):
    async def get(self, programme_id: uuid.UUID) -> Programme | None:
        return await self.db.get(Programme, programme_id)

    async def lock(self, programme_id: uuid.UUID) -> Programme | None:
        """The programme's row, locked until the transaction ends (``FOR UPDATE`` on
        PostgreSQL; SQLite serialises writers anyway), as it is in the database now."""
        return await self.locked(Programme, programme_id)

    async def matching(
        self, *, public_only: bool, kind: str | None = None, status: str | None = None
    ) -> list[Programme]:
        """By title; ``public_only``: published and closed ones."""
        query = select(Programme).order_by(col(Programme.title), col(Programme.id))
        if public_only:
            query = query.where(col(Programme.status).in_(PUBLIC))
        if kind is not None:
            query = query.where(col(Programme.kind) == kind)
        if status is not None:
            query = query.where(col(Programme.status) == status)
        return list((await self.db.execute(query)).scalars())

    async def count(self) -> int:
        return int(
            (await self.db.execute(select(func.count()).select_from(Programme))).scalar_one()
        )

    async def titles(self) -> dict[uuid.UUID, str]:
        rows = await self.db.execute(select(col(Programme.id), col(Programme.title)))
        return {pid: title for pid, title in rows.all()}


class VenueRepository(Repository):
    async def get(self, venue_id: uuid.UUID) -> Venue | None:
        return await self.db.get(Venue, venue_id)

    async def lock(self, venue_id: uuid.UUID) -> Venue | None:
        """The venue's row as it is now, locked until the transaction ends."""
        return await self.locked(Venue, venue_id)

    async def matching(self, *, ward: str | None = None) -> list[Venue]:
        """By name."""
        query = select(Venue).order_by(col(Venue.name), col(Venue.id))
        if ward is not None:
            query = query.where(col(Venue.ward) == ward)
        return list((await self.db.execute(query)).scalars())
