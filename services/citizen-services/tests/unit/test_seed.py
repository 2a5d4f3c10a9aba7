"""application/seed.py on a fake repository: the first start's catalogue."""

from __future__ import annotations

from citizen_services.application import seed

from .fakes import NOW, FakeCatalogue, make_service

RECORDS = [
    {"name": "Pay your council tax", "description": "Pay it", "last_reviewed_on": "2026-01-31"},
    {"name": "Report a pothole", "description": "Holes"},
]


async def test_an_empty_catalogue_gets_published_entries_with_history() -> None:
    entries = FakeCatalogue()
    assert await seed.seed(entries=entries, records=RECORDS, now=NOW) == 2
    services = await entries.all()
    assert [(s.name, s.status, s.version) for s in services] == [
        ("Pay your council tax", "published", 2),
        ("Report a pothole", "published", 2),
    ]
    assert str(services[0].last_reviewed_on) == "2026-01-31"
    assert [(h.version, h.action, h.actor) for h in await entries.history(services[1].id)] == [
        (1, "created", "seed"),
        (2, "published", "seed"),
    ]


async def test_ids_are_stable_across_instances() -> None:
    first, second = FakeCatalogue(), FakeCatalogue()
    await seed.seed(entries=first, records=RECORDS, now=NOW)
    await seed.seed(entries=second, records=RECORDS, now=NOW)
    assert set(first.services) == set(second.services)


async def test_a_catalogue_with_entries_is_left_alone() -> None:
    entries = FakeCatalogue([make_service("Existing")])
    assert await seed.seed(entries=entries, records=RECORDS) == 0
    assert len(entries.services) == 1 and entries.history_rows == []


def test_the_seed_file_names_each_service_once() -> None:
    records = seed.seed_records()
    assert len(records) > 200
    assert len({r["name"] for r in records}) == len(records)
