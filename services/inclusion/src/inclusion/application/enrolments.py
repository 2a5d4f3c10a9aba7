"""Enrolments: a citizen enrols (confirmed or waitlisted), cancels (the first waitlisted is
promoted), staff record attendance, cancel a whole session or change its capacity.

Concurrency: every command that changes a session's places first locks the session's row
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every write transaction begins IMMEDIATE,
which serialises writers). Under that lock the places are counted and the arrival sequence
is taken from the session's counter, so there is no overbooking, the waitlist is in the order
the service accepted the enrolments, and a promotion is never lost or doubled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from contracts import inclusion as events
from contracts.inclusion import (
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentWaitlisted,
    WaitlistPromoted,
)
from inclusion.application.participants import Profile, TryAgain, facts_of, save_profile
from inclusion.application.programmes import eligibility_rules
from inclusion.application.sessions import (
    SessionNotFound,
    SessionView,
    find_session_view,
    session_details,
    session_views,
)
from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.domain.programmes import ProgrammeNotOpen, ProgrammeStatus, check_eligible
from inclusion.domain.sessions import (
    AlreadyEnrolled,
    AttendanceNotAllowed,
    EnrolmentNotActive,
    EnrolmentStatus,
    SessionInThePast,
    SessionStatus,
    check_cancellable,
    check_capacity,
    check_open_for_enrolment,
    place_for,
)
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Enrolment, Participant, ProgrammeSession
from servicekit.errors import NotFound


class EnrolmentNotFound(NotFound):
    code, title = "enrolment-not-found", "Enrolment not found"


@dataclass(frozen=True)
class Enrol:
    session_id: uuid.UUID
    subject: str
    consent: bool
    profile: Profile = field(default_factory=Profile)


@dataclass(frozen=True)
class CancelEnrolment:
    enrolment_id: uuid.UUID
    subject: str | None
    by_staff: bool


@dataclass(frozen=True)
class RecordAttendance:
    enrolment_id: uuid.UUID
    attended: bool


@dataclass(frozen=True)
class CancelSession:
    session_id: uuid.UUID
    reason: str
    actor: str | None = None


@dataclass(frozen=True)
class ChangeCapacity:
    session_id: uuid.UUID
    capacity: int


@dataclass(frozen=True)
class EnrolmentResult:
    enrolment: Enrolment
    waitlist_position: int | None

    @property
    def positions(self) -> dict[uuid.UUID, int]:
        """{enrolment id: waitlist position} as the enrolment was accepted (empty when
        confirmed)."""
        return {self.enrolment.id: self.waitlist_position} if self.waitlist_position else {}


@dataclass(frozen=True)
class EnrolmentView:
    """An enrolment with its session, and its place in the queue if waitlisted."""

    enrolment: Enrolment
    waitlist_position: int | None
    session: SessionView


async def _lock_session(uow: InclusionUnitOfWork, session_id: uuid.UUID) -> ProgrammeSession:
    found = await uow.sessions.lock(session_id)
    if found is None:
        raise SessionNotFound(f"No session with id {session_id}.")
    return found


async def _event_fields(
    repos: Repositories,
    enrolment: Enrolment,
    session: ProgrammeSession,
    participant: Participant,
    now: datetime,
) -> dict[str, object]:
    return {
        "enrolment_id": enrolment.id,
        "session_id": session.id,
        "programme_id": session.programme_id,
        "participant_id": participant.id,
        "citizen_id": participant.subject,
        "session_starts_at": session.starts_at,
        "session_ends_at": session.ends_at,
        "occurred_at": now,
        **await session_details(repos, session),
    }


async def enrol(*, uow: InclusionUnitOfWork, command: Enrol) -> EnrolmentResult:
    now = datetime.now(UTC)
    session = await _lock_session(uow, command.session_id)
    programme = await uow.programmes.get(session.programme_id)
    assert programme is not None
    if programme.status == ProgrammeStatus.DRAFT:  # not visible to citizens
        raise SessionNotFound(f"No session with id {command.session_id}.")
    if programme.status != ProgrammeStatus.PUBLISHED:
        raise ProgrammeNotOpen(
            "This programme is not taking enrolments.",
            rule="programme-open",
            current_status=programme.status,
        )
    check_open_for_enrolment(session_status=session.status, starts_at=session.starts_at, now=now)
    participant = await save_profile(
        uow=uow, subject=command.subject, consent=command.consent, profile=command.profile
    )
    check_eligible(eligibility_rules(programme), facts_of(participant), today=now.date())
    if (existing := await uow.enrolments.active_id(session.id, participant.id)) is not None:
        raise AlreadyEnrolled(
            "You are already enrolled in this session.", enrolment_id=str(existing)
        )
    confirmed = await uow.enrolments.count(session.id, EnrolmentStatus.CONFIRMED)
    status = place_for(confirmed=confirmed, capacity=session.capacity)
    position: int | None = None
    if status is EnrolmentStatus.WAITLISTED:  # counted before this one is added
        position = await uow.enrolments.count(session.id, EnrolmentStatus.WAITLISTED) + 1
    session.enrolment_count += 1
    enrolment = Enrolment(
        session_id=session.id,
        participant_id=participant.id,
        status=status.value,
        sequence=session.enrolment_count,
        created_at=now,
        confirmed_at=now if status is EnrolmentStatus.CONFIRMED else None,
    )
    uow.enrolments.add(enrolment)
    fields = await _event_fields(uow, enrolment, session, participant, now)
    if position is None:
        uow.publish(EnrolmentConfirmed(**fields))
    else:
        uow.publish(EnrolmentWaitlisted(waitlist_position=position, **fields))
    try:
        await uow.flush()
    except IntegrityError:  # the same citizen enrolling twice at once (unique index)
        raise TryAgain("This enrolment changed at the same time; try again.") from None
    return EnrolmentResult(enrolment, position)


async def _owned_enrolment(
    repos: Repositories, enrolment_id: uuid.UUID, subject: str | None, staff: bool
) -> tuple[Enrolment, Participant]:
    row = await repos.enrolments.with_participant(enrolment_id)
    # Another citizen's enrolment is answered exactly like a missing one.
    if row is None or not (staff or (subject is not None and row[1].subject == subject)):
        raise EnrolmentNotFound(f"No enrolment with id {enrolment_id}.")
    return row


async def cancel(*, uow: InclusionUnitOfWork, command: CancelEnrolment) -> Enrolment:
    now = datetime.now(UTC)
    enrolment, participant = await _owned_enrolment(
        uow, command.enrolment_id, command.subject, command.by_staff
    )
    await cancel_enrolment(
        uow=uow,
        enrolment=enrolment,
        participant=participant,
        now=now,
        by="staff" if command.by_staff else "citizen",
    )
    return enrolment


async def cancel_enrolment(
    *,
    uow: InclusionUnitOfWork,
    enrolment: Enrolment,
    participant: Participant,
    now: datetime,
    by: str,
) -> None:
    """Cancel ``enrolment`` under its session's lock and promote the first waitlisted one
    into a freed place (``by``: who cancelled, as EnrolmentCancelled.cancelled_by)."""
    session = await _lock_session(uow, enrolment.session_id)
    await uow.enrolments.reload(enrolment)  # its status as of the lock
    if enrolment.status == EnrolmentStatus.CANCELLED:
        raise EnrolmentNotActive(
            "This enrolment is already cancelled.", current_status=enrolment.status
        )
    if session.starts_at <= now:
        raise SessionInThePast("This session has already started.", rule="cancel-before-start")
    previous = enrolment.status
    enrolment.status = EnrolmentStatus.CANCELLED.value
    enrolment.cancelled_at = now
    uow.publish(
        EnrolmentCancelled(
            previous_status=previous,
            cancelled_by=by,
            **await _event_fields(uow, enrolment, session, participant, now),
        )
    )
    if previous == EnrolmentStatus.CONFIRMED:
        await _promote(uow, session, places=1, now=now, freed_by=enrolment.id)


async def _promote(
    uow: InclusionUnitOfWork,
    session: ProgrammeSession,
    *,
    places: int,
    now: datetime,
    freed_by: uuid.UUID | None,
) -> int:
    """Give up to ``places`` free places to the first on the waitlist, in arrival order, one
    WaitlistPromoted each (under the session's lock). Returns how many."""
    if places <= 0:
        return 0
    rows = await uow.enrolments.in_session(
        session.id, status=EnrolmentStatus.WAITLISTED, limit=places
    )
    for promoted, promoted_participant in rows:
        promoted.status = EnrolmentStatus.CONFIRMED.value
        promoted.confirmed_at = promoted.promoted_at = now
        uow.publish(
            WaitlistPromoted(
                freed_by_enrolment_id=freed_by,
                **await _event_fields(uow, promoted, session, promoted_participant, now),
            )
        )
    return len(rows)


async def cancel_session(*, uow: InclusionUnitOfWork, command: CancelSession) -> ProgrammeSession:
    """Staff cancel a session that has not started: it takes no more enrolments, and every
    confirmed and waitlisted enrolment in it is cancelled (nobody is promoted).

    One ``SessionCancelled`` (keyed by the session id) names the affected citizens: it is
    what notifications turns into one message each. Each enrolment's own
    ``EnrolmentCancelled`` (``cancelled_by="session-cancelled"``) keeps the enrolment's
    history complete; notifications sends nothing for it.

    Idempotent: a session already cancelled is returned unchanged, with no event (the first
    reason stays)."""
    now = datetime.now(UTC)
    session = await _lock_session(uow, command.session_id)
    if session.status == SessionStatus.CANCELLED:
        return session  # nothing changed
    check_cancellable(starts_at=session.starts_at, now=now)
    session.status = SessionStatus.CANCELLED.value
    session.cancelled_at = now
    session.cancellation_reason = command.reason
    session.cancelled_by = command.actor
    rows = await uow.enrolments.in_session(session.id)
    for enrolment, participant in rows:
        previous = enrolment.status
        enrolment.status = EnrolmentStatus.CANCELLED.value
        enrolment.cancelled_at = now
        uow.publish(
            EnrolmentCancelled(
                previous_status=previous,
                cancelled_by="session-cancelled",
                **await _event_fields(uow, enrolment, session, participant, now),
            )
        )
    uow.publish(
        events.SessionCancelled(
            session_id=session.id,
            programme_id=session.programme_id,
            venue_id=session.venue_id,
            starts_at=session.starts_at,
            ends_at=session.ends_at,
            reason=command.reason,
            participant_ids=[p.id for _, p in rows],
            citizen_ids=list(dict.fromkeys(p.subject for _, p in rows if p.subject)),
            cancelled_enrolment_ids=[e.id for e, _ in rows],
            cancelled_by=command.actor,
            occurred_at=now,
            **await session_details(uow, session),
        )
    )
    return session


async def change_capacity(*, uow: InclusionUnitOfWork, command: ChangeCapacity) -> ProgrammeSession:
    """Staff change a session's places. More places go to the first on the waitlist, in
    arrival order (one WaitlistPromoted each); fewer than the confirmed enrolments is
    refused (cancel enrolments first). The same capacity again changes nothing."""
    now = datetime.now(UTC)
    session = await _lock_session(uow, command.session_id)
    confirmed = await uow.enrolments.count(session.id, EnrolmentStatus.CONFIRMED)
    check_capacity(
        session_status=session.status,
        starts_at=session.starts_at,
        capacity=command.capacity,
        confirmed=confirmed,
        now=now,
    )
    if command.capacity == session.capacity:
        return session  # nothing changed
    session.capacity = command.capacity
    await _promote(uow, session, places=command.capacity - confirmed, now=now, freed_by=None)
    return session


async def record_attendance(*, uow: InclusionUnitOfWork, command: RecordAttendance) -> Enrolment:
    now = datetime.now(UTC)
    enrolment, _ = await _owned_enrolment(uow, command.enrolment_id, None, True)
    session = await _lock_session(uow, enrolment.session_id)
    await uow.enrolments.reload(enrolment)
    if enrolment.status != EnrolmentStatus.CONFIRMED:
        raise AttendanceNotAllowed(
            "Attendance is recorded only for confirmed enrolments.",
            rule="confirmed-only",
            current_status=enrolment.status,
        )
    if session.starts_at > now:
        raise AttendanceNotAllowed(
            "Attendance can be recorded once the session has started.", rule="session-started"
        )
    enrolment.attended = command.attended
    enrolment.attendance_recorded_at = now
    return enrolment


# -- queries ---------------------------------------------------------------------------------


async def get_enrolment(
    *, repos: Repositories, enrolment_id: uuid.UUID, subject: str | None, staff: bool
) -> Enrolment:
    return (await _owned_enrolment(repos, enrolment_id, subject, staff))[0]


async def list_enrolments(
    *,
    repos: Repositories,
    subject: str | None,
    session_id: uuid.UUID | None = None,
    status: EnrolmentStatus | None = None,
) -> list[Enrolment]:
    """The caller's enrolments (``subject``), or everyone's (staff: ``subject=None``), by
    creation time."""
    return await repos.enrolments.matching(subject=subject, session_id=session_id, status=status)


async def session_enrolments(
    *, repos: Repositories, session_id: uuid.UUID, status: EnrolmentStatus | None = None
) -> list[Enrolment]:
    """A session's enrolments in arrival order (staff)."""
    await find_session_view(repos=repos, session_id=session_id, staff=True)
    found = await repos.enrolments.matching(session_id=session_id, status=status)
    found.sort(key=lambda e: e.sequence)
    return found


async def waitlist_positions(
    *, repos: Repositories, enrolments: list[Enrolment]
) -> dict[uuid.UUID, int]:
    """The current place in the queue of each waitlisted enrolment (1 = next)."""
    session_ids = {e.session_id for e in enrolments if e.status == EnrolmentStatus.WAITLISTED}
    if not session_ids:
        return {}
    positions: dict[uuid.UUID, int] = {}
    seen: dict[uuid.UUID, int] = {}
    for enrolment_id, sid in await repos.enrolments.waitlists(session_ids):
        seen[sid] = seen.get(sid, 0) + 1
        positions[enrolment_id] = seen[sid]
    return positions


async def enrolment_views(
    *,
    repos: Repositories,
    enrolments: list[Enrolment],
    positions: dict[uuid.UUID, int] | None = None,
) -> list[EnrolmentView]:
    """``enrolments`` with their sessions; their current waitlist positions unless
    ``positions`` are given."""
    if positions is None:
        positions = await waitlist_positions(repos=repos, enrolments=enrolments)
    views = {
        v.session.id: v
        for v in await session_views(
            repos=repos, staff=True, session_ids=list({e.session_id for e in enrolments})
        )
    }
    return [EnrolmentView(e, positions.get(e.id), views[e.session_id]) for e in enrolments]


async def enrolment_view(
    *, repos: Repositories, enrolment: Enrolment, positions: dict[uuid.UUID, int] | None = None
) -> EnrolmentView:
    """One enrolment's view, as ``enrolment_views``."""
    [view] = await enrolment_views(repos=repos, enrolments=[enrolment], positions=positions)
    return view
