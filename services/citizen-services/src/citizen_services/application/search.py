"""Search over catalogue entries: full text, filters, sorting, pages (a query: no unit of
work). Citizens see published entries; only staff may list another status.

The query and its result are plain values (``domain/search.py``); the SQL, with its
PostgreSQL and SQLite branches, is in ``persistence/search.py``, reached through
:class:`~citizen_services.persistence.catalogue.CatalogueRepository`.
:func:`catalogue_version` reads the counter every change of an entry bumps, so a caller can
build an ETag, and answer 304, before searching.
"""

from __future__ import annotations

from typing import Any

from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.domain.search import Channel, SearchResult, SearchServices, Sort
from citizen_services.persistence.catalogue import CatalogueRepository
from servicekit.errors import Forbidden

__all__ = [
    "Channel",
    "SearchResult",
    "SearchServices",
    "Sort",
    "catalogue_version",
    "check_may_list",
    "find_services",
    "search_services",
]


def check_may_list(query: SearchServices, *, staff: bool) -> None:
    """Anyone may list published entries; other statuses are staff's only."""
    if query.status is not ServiceStatus.PUBLISHED and not staff:
        raise Forbidden(f"Only staff may list {query.status.value} entries.")


async def catalogue_version(
    *, entries: CatalogueRepository, query: SearchServices, staff: bool
) -> int:
    """The catalogue's change counter (any insert, update or delete of an entry moves it),
    for a caller allowed to run ``query``."""
    check_may_list(query, staff=staff)
    return await entries.version()


async def find_services(
    *, entries: CatalogueRepository, query: SearchServices, staff: bool = False
) -> SearchResult:
    """One page of matching entries, how many match in all and the catalogue version (one
    round trip)."""
    check_may_list(query, staff=staff)
    return await entries.search(query)


async def search_services(
    *, entries: CatalogueRepository, query: SearchServices
) -> tuple[list[Any], int]:
    """One page of matching entries and how many match in all."""
    result = await find_services(entries=entries, query=query)
    return result.items, result.total
