"""Seed data (application/seed.py) on in-memory units of work."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from inclusion.application.seed import PROGRAMMES, VENUES, seed, upcoming_sessions

from .fakes import FakeTransactions, a_programme


async def test_an_empty_service_is_seeded_once() -> None:
    tx = FakeTransactions()
    assert await seed(tx) is True
    assert len(tx.store.programmes) == len(PROGRAMMES)
    assert len(tx.store.venues) == len(VENUES)
    assert all(p.status == "published" for p in tx.store.programmes.values())
    sessions = upcoming_sessions(datetime.now(UTC))
    assert len(tx.store.sessions) == len(sessions)
    assert Counter(type(e).__name__ for e in tx.published()) == {
        "ProgrammePublished": len(PROGRAMMES),
        "SessionScheduled": len(sessions),
    }
    assert len(tx.committed) == 1

    assert await seed(tx) is False  # not empty any more
    assert len(tx.published()) == len(PROGRAMMES) + len(sessions)


async def test_a_service_with_programmes_is_left_alone() -> None:
    tx = FakeTransactions()
    a_programme(tx.store)
    assert await seed(tx) is False
    assert tx.published() == [] and tx.store.venues == {}


async def test_another_instance_seeding_at_the_same_moment_is_harmless() -> None:
    tx = FakeTransactions()
    tx.conflict_on_flush = True  # its rows went in first: ours hit the primary keys
    assert await seed(tx) is False
    assert tx.committed == [] and len(tx.rolled_back) == 1


def test_ids_are_stable() -> None:
    now = datetime.now(UTC)
    assert [s.id for s in upcoming_sessions(now)] == [s.id for s in upcoming_sessions(now)]
    assert len({v.id for v in VENUES}) == len(VENUES)
