"""Enrolments (application/enrolments.py, participants.py) on in-memory repositories: places
and the waitlist, cancellations and promotions, whole-session changes, attendance."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from inclusion.application import enrolments, participants
from inclusion.domain.programmes import NotEligible, ProgrammeNotOpen
from inclusion.domain.sessions import (
    AlreadyEnrolled,
    AttendanceNotAllowed,
    CapacityBelowConfirmed,
    ConsentRequired,
    EnrolmentNotActive,
    SessionAlreadyCancelled,
    SessionAlreadyStarted,
)

from .fakes import (
    FakeUnitOfWork,
    a_participant,
    a_programme,
    a_session,
    an_enrolment,
)


def enrol(
    session_id: uuid.UUID,
    subject: str = "citizen-1",
    *,
    consent: bool = True,
    postcode: str | None = "MK9 3HL",
) -> enrolments.Enrol:
    return enrolments.Enrol(
        session_id=session_id,
        subject=subject,
        consent=consent,
        profile=participants.Profile(postcode=postcode, year_of_birth=1970),
    )


async def test_places_first_then_the_waitlist_in_arrival_order() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store, capacity=1)
    first = await enrolments.enrol(uow=uow, command=enrol(session.id, "c1"))
    second = await enrolments.enrol(uow=uow, command=enrol(session.id, "c2"))
    third = await enrolments.enrol(uow=uow, command=enrol(session.id, "c3"))
    assert (first.enrolment.status, first.waitlist_position, first.positions) == (
        "confirmed",
        None,
        {},
    )
    assert (second.enrolment.status, second.waitlist_position) == ("waitlisted", 1)
    assert third.waitlist_position == 2 and third.positions == {third.enrolment.id: 2}
    assert [e.sequence for e in (first.enrolment, second.enrolment, third.enrolment)] == [1, 2, 3]
    assert uow.types() == ["EnrolmentConfirmed", "EnrolmentWaitlisted", "EnrolmentWaitlisted"]
    event = uow.published[0]
    assert event.programme_title == "Getting started online"  # type: ignore[attr-defined]
    assert event.citizen_id == "c1"  # type: ignore[attr-defined]
    assert await enrolments.waitlist_positions(
        repos=uow, enrolments=[second.enrolment, third.enrolment]
    ) == {second.enrolment.id: 1, third.enrolment.id: 2}


async def test_enrolment_refusals() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store)
    await enrolments.enrol(uow=uow, command=enrol(session.id))
    with pytest.raises(AlreadyEnrolled):
        await enrolments.enrol(uow=uow, command=enrol(session.id))
    with pytest.raises(ConsentRequired):
        await enrolments.enrol(uow=uow, command=enrol(session.id, "new", consent=False))
    draft = a_session(uow.store, programme=a_programme(uow.store, status="draft"))
    with pytest.raises(enrolments.SessionNotFound):
        await enrolments.enrol(uow=uow, command=enrol(draft.id))
    closed = a_session(uow.store, programme=a_programme(uow.store, status="closed"))
    with pytest.raises(ProgrammeNotOpen):
        await enrolments.enrol(uow=uow, command=enrol(closed.id))
    cancelled = a_session(uow.store, status="cancelled")
    with pytest.raises(SessionAlreadyCancelled):
        await enrolments.enrol(uow=uow, command=enrol(cancelled.id))
    older = a_session(uow.store, programme=a_programme(uow.store, eligibility={"min_age": 80}))
    with pytest.raises(NotEligible):
        await enrolments.enrol(uow=uow, command=enrol(older.id, "young"))
    assert uow.types() == ["EnrolmentConfirmed"]


async def test_a_unique_index_race_is_try_again() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store)
    uow.conflict_on_flush = True
    with pytest.raises(participants.TryAgain):
        await enrolments.enrol(uow=uow, command=enrol(session.id))


async def test_cancelling_a_confirmed_place_promotes_the_first_waitlisted() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store, capacity=1)
    mine = an_enrolment(uow.store, session, a_participant(uow.store, "c1"))
    waiting = [
        an_enrolment(uow.store, session, a_participant(uow.store, f"w{n}"), status="waitlisted")
        for n in range(2)
    ]
    with pytest.raises(enrolments.EnrolmentNotFound):  # another citizen's
        await enrolments.cancel(
            uow=uow, command=enrolments.CancelEnrolment(mine.id, subject="w0", by_staff=False)
        )
    await enrolments.cancel(
        uow=uow, command=enrolments.CancelEnrolment(mine.id, subject="c1", by_staff=False)
    )
    assert mine.status == "cancelled" and waiting[0].status == "confirmed"
    assert waiting[1].status == "waitlisted"
    assert uow.types() == ["EnrolmentCancelled", "WaitlistPromoted"]
    assert uow.published[0].cancelled_by == "citizen"  # type: ignore[attr-defined]
    assert uow.published[1].freed_by_enrolment_id == mine.id  # type: ignore[attr-defined]
    with pytest.raises(EnrolmentNotActive):
        await enrolments.cancel(
            uow=uow, command=enrolments.CancelEnrolment(mine.id, subject=None, by_staff=True)
        )


async def test_cancelling_a_session_cancels_every_enrolment_and_promotes_nobody() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store, capacity=1)
    an_enrolment(uow.store, session, a_participant(uow.store, "c1"))
    an_enrolment(uow.store, session, a_participant(uow.store, "c2"), status="waitlisted")
    an_enrolment(uow.store, session, a_participant(uow.store, "c3"), status="cancelled")
    await enrolments.cancel_session(
        uow=uow, command=enrolments.CancelSession(session.id, reason="Flooded", actor="staff-1")
    )
    assert session.status == "cancelled" and session.cancellation_reason == "Flooded"
    assert uow.types() == ["EnrolmentCancelled", "EnrolmentCancelled", "SessionCancelled"]
    assert uow.published[-1].citizen_ids == ["c1", "c2"]  # type: ignore[attr-defined]

    again = FakeUnitOfWork(uow.store)  # idempotent: nothing changes, nothing is published
    await enrolments.cancel_session(
        uow=again, command=enrolments.CancelSession(session.id, reason="Other")
    )
    assert again.published == [] and session.cancellation_reason == "Flooded"

    started = a_session(uow.store, starts_in=-timedelta(minutes=5))
    with pytest.raises(SessionAlreadyStarted):
        await enrolments.cancel_session(
            uow=uow, command=enrolments.CancelSession(started.id, reason="Late")
        )


async def test_more_places_promote_in_order_and_fewer_than_confirmed_is_refused() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store, capacity=1)
    an_enrolment(uow.store, session, a_participant(uow.store, "c1"))
    waiting = [
        an_enrolment(uow.store, session, a_participant(uow.store, f"w{n}"), status="waitlisted")
        for n in range(3)
    ]
    await enrolments.change_capacity(uow=uow, command=enrolments.ChangeCapacity(session.id, 3))
    assert [e.status for e in waiting] == ["confirmed", "confirmed", "waitlisted"]
    assert uow.types() == ["WaitlistPromoted"] * 2
    with pytest.raises(CapacityBelowConfirmed):
        await enrolments.change_capacity(uow=uow, command=enrolments.ChangeCapacity(session.id, 2))
    same = FakeUnitOfWork(uow.store)
    await enrolments.change_capacity(uow=same, command=enrolments.ChangeCapacity(session.id, 3))
    assert same.published == []


async def test_attendance_is_for_confirmed_enrolments_once_started() -> None:
    uow = FakeUnitOfWork()
    upcoming = a_session(uow.store)
    started = a_session(uow.store, starts_in=-timedelta(minutes=30))
    person = a_participant(uow.store)
    early = an_enrolment(uow.store, upcoming, person)
    with pytest.raises(AttendanceNotAllowed):
        await enrolments.record_attendance(
            uow=uow, command=enrolments.RecordAttendance(early.id, attended=True)
        )
    waitlisted = an_enrolment(
        uow.store, started, a_participant(uow.store, "w"), status="waitlisted"
    )
    with pytest.raises(AttendanceNotAllowed):
        await enrolments.record_attendance(
            uow=uow, command=enrolments.RecordAttendance(waitlisted.id, attended=True)
        )
    there = an_enrolment(uow.store, started, person)
    await enrolments.record_attendance(
        uow=uow, command=enrolments.RecordAttendance(there.id, attended=True)
    )
    assert there.attended is True and there.attendance_recorded_at is not None


async def test_views_and_queries() -> None:
    uow = FakeUnitOfWork()
    session = a_session(uow.store, capacity=1)
    mine = an_enrolment(uow.store, session, a_participant(uow.store, "c1"))
    theirs = an_enrolment(uow.store, session, a_participant(uow.store, "c2"), status="waitlisted")
    assert await enrolments.list_enrolments(repos=uow, subject="c1") == [mine]
    assert await enrolments.session_enrolments(repos=uow, session_id=session.id) == [mine, theirs]
    with pytest.raises(enrolments.SessionNotFound):
        await enrolments.session_enrolments(repos=uow, session_id=uuid.uuid4())
    [view] = await enrolments.enrolment_views(repos=uow, enrolments=[theirs])
    assert view.waitlist_position == 1 and view.session.session is session
    with pytest.raises(enrolments.EnrolmentNotFound):
        await enrolments.get_enrolment(repos=uow, enrolment_id=mine.id, subject="c2", staff=False)


async def test_profiles() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(ConsentRequired):
        await participants.save_profile(
            uow=uow, subject="c1", consent=False, profile=participants.Profile()
        )
    made = await participants.save_profile(
        uow=uow, subject="c1", consent=True, profile=participants.Profile(postcode="mk9 3hl")
    )
    assert (made.postcode, made.postcode_district) == ("MK9 3HL", "MK9")
    same = await participants.save_profile(
        uow=uow, subject="c1", consent=False, profile=participants.Profile(year_of_birth=1950)
    )
    assert same is made and made.year_of_birth == 1950 and made.postcode == "MK9 3HL"
    assert participants.facts_of(made).lives_in_milton_keynes is True
    with pytest.raises(participants.ParticipantNotFound):
        await participants.find_participant(repos=uow, subject="c2")
