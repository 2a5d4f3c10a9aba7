"""application/search.py on a fake repository: who may list what, and the query handed on."""

from __future__ import annotations

import pytest

from citizen_services.application import search
from citizen_services.domain.catalogue import ServiceStatus
from servicekit.errors import Forbidden

from .fakes import FakeCatalogue, make_service


@pytest.fixture
def entries() -> FakeCatalogue:
    return FakeCatalogue(
        [
            make_service("Pay your council tax", keywords=["council tax"]),
            make_service("Apply for a bus pass"),
            make_service("New draft", status=ServiceStatus.DRAFT.value),
        ]
    )


async def test_anyone_may_search_published_entries(entries: FakeCatalogue) -> None:
    found = await search.find_services(
        entries=entries, query=search.SearchServices(q="council tax")
    )
    assert [r.name for r in found.items] == ["Pay your council tax"]
    assert found.total == 1 and found.catalogue_version == entries.catalogue_version


@pytest.mark.parametrize("status", [s for s in ServiceStatus if s is not ServiceStatus.PUBLISHED])
async def test_only_staff_list_other_statuses(
    entries: FakeCatalogue, status: ServiceStatus
) -> None:
    query = search.SearchServices(status=status)
    with pytest.raises(Forbidden):
        await search.find_services(entries=entries, query=query, staff=False)
    with pytest.raises(Forbidden):
        await search.catalogue_version(entries=entries, query=query, staff=False)
    assert entries.searches == []  # refused before any query
    assert await search.catalogue_version(entries=entries, query=query, staff=True) == 7


async def test_staff_list_drafts(entries: FakeCatalogue) -> None:
    found = await search.find_services(
        entries=entries, query=search.SearchServices(status=ServiceStatus.DRAFT), staff=True
    )
    assert [r.name for r in found.items] == ["New draft"]


async def test_search_services_is_the_page_and_the_total(entries: FakeCatalogue) -> None:
    items, total = await search.search_services(
        entries=entries, query=search.SearchServices(sort=search.Sort.NAME, size=1)
    )
    assert [r.name for r in items] == ["Apply for a bus pass"] and total == 2


def test_the_cache_key_normalises_the_words() -> None:
    a = search.SearchServices(q="Council  TAX!")
    b = search.SearchServices(q="council tax")
    assert a.cache_key() == b.cache_key()
    assert a.cache_key() != search.SearchServices(q="council tax", page=2).cache_key()
