"""The catalogue's repository: every query over ``catalogue_service`` and its history.

Built from a unit of work (``CatalogueRepository(uow.db)``) for commands, or from a read
session (``CatalogueRepository(db)``) for queries; ``application/`` holds the rules and calls
it, and its unit tests pass an in-memory fake instead (``tests/unit/fakes.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, bindparam, func, or_, select
from sqlmodel import col

from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.domain.search import SearchResult, SearchServices
from citizen_services.persistence import search
from citizen_services.persistence.tables import CatalogueService, CatalogueServiceHistory
from servicekit.repository import Repository

_ENTRY = CatalogueService.__table__  # type: ignore[attr-defined]
#: One entry by id, as a row (Core, not an ORM object: a read needs no identity map, and
#: loading an ORM instance cost twice the whole query).
_ENTRY_BY_ID = select(_ENTRY).where(_ENTRY.c.id == bindparam("service_id"))


def _published() -> Any:
    return col(CatalogueService.status) == ServiceStatus.PUBLISHED.value


class CatalogueRepository(Repository):
    # -- writes (through a unit of work's session) ----------------------------------------
    def add_history(self, entry: CatalogueServiceHistory) -> None:
        self.db.add(entry)

    async def get(
        self, service_id: uuid.UUID, *, for_update: bool = False
    ) -> CatalogueService | None:
        """The entry to change. ``for_update``: lock the row (PostgreSQL) so concurrent
        status changes queue instead of each reading the old status and publishing their
        own event; SQLite's BEGIN IMMEDIATE already serialises writers."""
        return await self.db.get(CatalogueService, service_id, with_for_update=for_update)

    async def slug_or_code_taken(self, slug: str, code: str) -> bool:
        clash = await self.db.execute(
            select(col(CatalogueService.id)).where(
                or_(col(CatalogueService.slug) == slug, col(CatalogueService.service_code) == code)
            )
        )
        return clash.first() is not None

    async def slugs_and_codes(self) -> list[tuple[str, str]]:
        rows = await self.db.execute(
            select(col(CatalogueService.slug), col(CatalogueService.service_code))
        )
        return [(slug, code) for slug, code in rows.all()]

    async def count(self) -> int:
        return int(
            (await self.db.execute(select(func.count()).select_from(CatalogueService))).scalar_one()
        )

    # -- reads ----------------------------------------------------------------------------
    async def entry(self, service_id: uuid.UUID) -> Row[Any] | None:
        """One entry as a row (its columns as attributes), or None."""
        return (await self.db.execute(_ENTRY_BY_ID, {"service_id": service_id})).first()

    async def history(self, service_id: uuid.UUID) -> list[CatalogueServiceHistory]:
        result = await self.db.execute(
            select(CatalogueServiceHistory)
            .where(col(CatalogueServiceHistory.service_id) == service_id)
            .order_by(col(CatalogueServiceHistory.version))
        )
        return list(result.scalars().all())

    async def all(self) -> list[CatalogueService]:
        """Every entry, by name."""
        result = await self.db.execute(
            select(CatalogueService).order_by(col(CatalogueService.name), col(CatalogueService.id))
        )
        return list(result.scalars().all())

    async def by_code(self, code: str) -> CatalogueService | None:
        return (
            await self.db.execute(
                select(CatalogueService).where(col(CatalogueService.service_code) == code)
            )
        ).scalar_one_or_none()

    async def published(self) -> list[CatalogueService]:
        """Published entries, by name."""
        rows = await self.db.execute(
            select(CatalogueService)
            .where(_published())
            .order_by(col(CatalogueService.name), col(CatalogueService.id))
        )
        return list(rows.scalars().all())

    async def published_by_code(self, code: str) -> CatalogueService | None:
        row = await self.db.execute(
            select(CatalogueService).where(col(CatalogueService.service_code) == code, _published())
        )
        return row.scalar_one_or_none()

    async def names(self, codes: Iterable[str]) -> dict[str, str]:
        """Service names by service code."""
        rows = await self.db.execute(
            select(col(CatalogueService.service_code), col(CatalogueService.name)).where(
                col(CatalogueService.service_code).in_(list(codes))
            )
        )
        return {code: name for code, name in rows.all()}

    async def published_facets(
        self,
    ) -> list[tuple[str | None, list[int], list[str], dict[str, Any]]]:
        """(department, lgsl_codes, groups, channels) of each published entry: one query
        over four narrow columns."""
        rows = await self.db.execute(
            select(
                col(CatalogueService.department),
                col(CatalogueService.lgsl_codes),
                col(CatalogueService.groups),
                col(CatalogueService.channels),
            ).where(_published())
        )
        return [
            (department, lgsl or [], groups or [], channels or {})
            for department, lgsl, groups, channels in rows.all()
        ]

    async def published_channels(self) -> list[tuple[uuid.UUID, dict[str, Any]]]:
        """(id, channels) of each published entry."""
        rows = await self.db.execute(
            select(col(CatalogueService.id), col(CatalogueService.channels)).where(_published())
        )
        return [(service_id, channels or {}) for service_id, channels in rows.all()]

    async def search(self, query: SearchServices) -> SearchResult:
        """A page of matching entries (``persistence/search.py``)."""
        return await search.find_services(self.db, query)

    async def version(self) -> int:
        """The catalogue's change counter."""
        return await search.catalogue_version(self.db)
