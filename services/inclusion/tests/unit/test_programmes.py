"""Programmes, venues and sessions (application/programmes.py, venues.py, sessions.py) on
in-memory repositories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from inclusion.application import programmes, sessions, venues
from inclusion.domain.programmes import (
    EligibilityRules,
    InvalidProgrammeTransition,
    ProgrammeKind,
    ProgrammeNotOpen,
    ProgrammeStatus,
)
from inclusion.domain.sessions import SessionInThePast

from .fakes import (
    FakeUnitOfWork,
    a_participant,
    a_programme,
    a_session,
    a_venue,
    an_enrolment,
)


def create(**changes: object) -> programmes.CreateProgramme:
    return programmes.CreateProgramme(
        **{  # type: ignore[arg-type]
            "title": "Getting started online",
            "kind": ProgrammeKind.DIGITAL_SKILLS_COURSE,
            "delivered_by": "MK Libraries",
            **changes,
        }
    )


async def test_a_programme_starts_as_a_draft_and_publishing_announces_it() -> None:
    uow = FakeUnitOfWork()
    made = await programmes.create_programme(
        uow=uow, command=create(eligibility=EligibilityRules(min_age=16))
    )
    assert made.status == "draft" and made.eligibility["min_age"] == 16
    assert uow.published == []

    published = await programmes.change_programme_status(
        uow=uow,
        command=programmes.ChangeProgrammeStatus(
            made.id, ProgrammeStatus.PUBLISHED, actor="staff-1"
        ),
    )
    assert published.status == "published" and published.version == 2
    assert published.published_at is not None
    assert uow.types() == ["ProgrammePublished"]
    assert uow.published[0].published_by == "staff-1"  # type: ignore[attr-defined]


async def test_status_changes_follow_the_lifecycle() -> None:
    uow = FakeUnitOfWork()
    archived = a_programme(uow.store, status="archived")
    with pytest.raises(InvalidProgrammeTransition):
        await programmes.change_programme_status(
            uow=uow,
            command=programmes.ChangeProgrammeStatus(archived.id, ProgrammeStatus.PUBLISHED),
        )
    with pytest.raises(programmes.ProgrammeNotFound):
        await programmes.change_programme_status(
            uow=uow, command=programmes.ChangeProgrammeStatus(uuid.uuid4(), ProgrammeStatus.CLOSED)
        )
    assert uow.published == []


async def test_drafts_are_for_staff_only() -> None:
    uow = FakeUnitOfWork()
    draft = a_programme(uow.store, status="draft", title="B draft")
    public = a_programme(uow.store, title="A published")
    with pytest.raises(programmes.ProgrammeNotFound):
        await programmes.find_programme(repos=uow, programme_id=draft.id, staff=False)
    assert await programmes.find_programme(repos=uow, programme_id=draft.id, staff=True) is draft
    assert await programmes.list_programmes(repos=uow, staff=False) == [public]
    assert await programmes.list_programmes(repos=uow, staff=True) == [public, draft]
    assert await programmes.list_programmes(
        repos=uow, staff=True, status=ProgrammeStatus.DRAFT
    ) == [draft]


async def test_eligibility_check_counts_what_we_do_not_know_as_unmet() -> None:
    uow = FakeUnitOfWork()
    course = a_programme(uow.store, eligibility={"min_age": 16, "lives_in_milton_keynes": True})
    unmet = await programmes.check_eligibility(
        repos=uow, programme_id=course.id, subject="nobody-yet"
    )
    assert {u.rule for u in unmet} == {"age", "lives_in_milton_keynes"}
    a_participant(uow.store, "citizen-1", year_of_birth=1970, postcode_district="MK9")
    assert (
        await programmes.check_eligibility(repos=uow, programme_id=course.id, subject="citizen-1")
        == []
    )


async def test_venues() -> None:
    uow = FakeUnitOfWork()
    venue = await venues.create_venue(
        uow=uow,
        command=venues.CreateVenue(
            name="Olney Library",
            address="High Street",
            postcode="mk46 4ef",
            ward="Olney",
            latitude=52.15,
            longitude=-0.70,
        ),
    )
    assert venue.postcode == "MK46 4EF"
    assert await venues.find_venue(repos=uow, venue_id=venue.id) is venue
    assert await venues.list_venues(repos=uow, ward="Bletchley East") == []
    with pytest.raises(venues.VenueNotFound):
        await venues.find_venue(repos=uow, venue_id=uuid.uuid4())


def schedule(
    programme_id: uuid.UUID, venue_id: uuid.UUID, starts_in: timedelta = timedelta(days=1)
) -> sessions.ScheduleSession:
    starts = datetime.now(UTC) + starts_in
    return sessions.ScheduleSession(
        programme_id=programme_id,
        venue_id=venue_id,
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        capacity=10,
    )


async def test_scheduling_a_session_checks_its_programme_venue_and_times() -> None:
    uow = FakeUnitOfWork()
    course, venue = a_programme(uow.store), a_venue(uow.store)
    made = await sessions.schedule_session(uow=uow, command=schedule(course.id, venue.id))
    assert made.status == "scheduled" and uow.types() == ["SessionScheduled"]

    archived = a_programme(uow.store, status="archived")
    with pytest.raises(ProgrammeNotOpen):
        await sessions.schedule_session(uow=uow, command=schedule(archived.id, venue.id))
    with pytest.raises(programmes.UnknownReference):
        await sessions.schedule_session(uow=uow, command=schedule(course.id, uuid.uuid4()))
    with pytest.raises(programmes.UnknownReference):
        await sessions.schedule_session(uow=uow, command=schedule(uuid.uuid4(), venue.id))
    with pytest.raises(SessionInThePast):
        await sessions.schedule_session(
            uow=uow, command=schedule(course.id, venue.id, starts_in=-timedelta(hours=1))
        )
    assert uow.types() == ["SessionScheduled"]


async def test_session_views_count_places() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store, capacity=3)
    for n in range(4):
        an_enrolment(
            uow.store,
            session,
            a_participant(uow.store, f"c{n}"),
            status="confirmed" if n < 2 else "waitlisted",
        )
    view = await sessions.find_session_view(repos=uow, session_id=session.id, staff=False)
    assert (view.confirmed, view.waitlisted, view.places_left) == (2, 2, 1)

    session.status = "cancelled"
    view = await sessions.find_session_view(repos=uow, session_id=session.id, staff=False)
    assert view.places_left == 0
    assert await sessions.session_views(repos=uow, staff=False, upcoming_only=True) == []

    draft_session = a_session(uow.store, programme=a_programme(uow.store, status="draft"))
    with pytest.raises(sessions.SessionNotFound):
        await sessions.find_session_view(repos=uow, session_id=draft_session.id, staff=False)
