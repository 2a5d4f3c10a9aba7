"""Participants and enrolments: a citizen enrols (confirmed or waitlisted), cancels (the
first waitlisted is promoted), staff record attendance, cancel a whole session or change its
capacity.

Concurrency: every command that changes a session's places first locks the session's row
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every write transaction begins IMMEDIATE,
which serialises writers). Under that lock the places are counted and the arrival sequence
is taken from the session's counter, so there is no overbooking, the waitlist is in the order
the service accepted the enrolments, and a promotion is never lost or doubled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import inclusion as events
from contracts.inclusion import (
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentWaitlisted,
    WaitlistPromoted,
)
from inclusion.application.catalogue import SessionNotFound, eligibility_rules
from inclusion.domain import geo
from inclusion.domain.programmes import (
    ParticipantFacts,
    ProgrammeNotOpen,
    ProgrammeStatus,
    check_eligible,
)
from inclusion.domain.sessions import (
    AlreadyEnrolled,
    AttendanceNotAllowed,
    ConsentRequired,
    EnrolmentNotActive,
    EnrolmentStatus,
    SessionInThePast,
    SessionStatus,
    check_cancellable,
    check_capacity,
    check_open_for_enrolment,
    place_for,
)
from inclusion.persistence.tables import (
    Enrolment,
    Participant,
    Programme,
    ProgrammeSession,
    Venue,
)
from servicekit.errors import Conflict, NotFound
from servicekit.uow import UnitOfWork

CONSENT_VERSION = "2026-11"


class EnrolmentNotFound(NotFound):
    code, title = "enrolment-not-found", "Enrolment not found"


class ParticipantNotFound(NotFound):
    code, title = "participant-not-found", "Participant not found"


class TryAgain(Conflict):
    code, title = "concurrent-change", "Changed at the same time by another request"


@dataclass(frozen=True)
class Profile:
    """What a participant may tell us; None = not given (keeps what we had)."""

    preferred_name: str | None = None
    postcode: str | None = None
    year_of_birth: int | None = None
    receives_benefits: bool | None = None
    has_device_at_home: bool | None = None
    has_connection_at_home: bool | None = None


@dataclass(frozen=True)
class Enrol:
    session_id: uuid.UUID
    subject: str
    consent: bool
    profile: Profile = Profile()


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


def facts_of(participant: Participant) -> ParticipantFacts:
    district = geo.district_of(participant.postcode_district or "") \
        if participant.postcode_district else None
    return ParticipantFacts(
        year_of_birth=participant.year_of_birth,
        lives_in_milton_keynes=None if participant.postcode_district is None
        else bool(district and district.in_milton_keynes),
        receives_benefits=participant.receives_benefits,
        has_device_at_home=participant.has_device_at_home,
        has_connection_at_home=participant.has_connection_at_home)


def _apply(participant: Participant, profile: Profile, now: datetime) -> None:
    if profile.postcode is not None:
        district = geo.lookup(profile.postcode)
        participant.postcode = profile.postcode.upper().strip()
        participant.postcode_district = district.code
    for name in ("preferred_name", "year_of_birth", "receives_benefits",
                 "has_device_at_home", "has_connection_at_home"):
        value = getattr(profile, name)
        if value is not None:
            setattr(participant, name, value)
    participant.updated_at = now


async def _participant_by_subject(session: AsyncSession, subject: str) -> Participant | None:
    result = await session.execute(select(Participant).where(
        col(Participant.subject) == subject))
    return result.scalars().first()


async def save_profile(*, uow: UnitOfWork, subject: str, consent: bool, profile: Profile,
                       commit: bool = True) -> Participant:
    """Create or update the caller's participant record (consent needed to create it)."""
    now = datetime.now(UTC)
    participant = await _participant_by_subject(uow.session, subject)
    if participant is None:
        if not consent:
            raise ConsentRequired(
                "We need your consent to keep the details needed to enrol you.",
                rule="consent-required")
        participant = Participant(subject=subject, consent_given_at=now,
                                  consent_version=CONSENT_VERSION, created_at=now,
                                  updated_at=now)
        uow.session.add(participant)
    elif consent:
        participant.consent_given_at = now
        participant.consent_version = CONSENT_VERSION
    _apply(participant, profile, now)
    if commit:
        try:
            await uow.commit()
        except IntegrityError:  # the same citizen, twice at once
            await uow.rollback()
            raise TryAgain("Your details changed at the same time; try again.") from None
    return participant


async def find_participant(*, session: AsyncSession, subject: str) -> Participant:
    participant = await _participant_by_subject(session, subject)
    if participant is None:
        raise ParticipantNotFound("You have not enrolled in anything yet.")
    return participant


async def _lock_session(uow: UnitOfWork, session_id: uuid.UUID) -> ProgrammeSession:
    # FOR UPDATE on PostgreSQL; on SQLite the transaction already holds the write lock.
    result = await uow.session.execute(
        select(ProgrammeSession).where(col(ProgrammeSession.id) == session_id)
        .with_for_update().execution_options(populate_existing=True))
    found = result.scalars().first()
    if found is None:
        raise SessionNotFound(f"No session with id {session_id}.")
    return found


async def _waitlisted_count(uow: UnitOfWork, session_id: uuid.UUID) -> int:
    return int((await uow.session.execute(
        select(func.count()).select_from(Enrolment).where(
            col(Enrolment.session_id) == session_id,
            col(Enrolment.status) == EnrolmentStatus.WAITLISTED.value))).scalar_one())


async def session_details(db: AsyncSession, session: ProgrammeSession) -> dict[str, object]:
    """What a message about ``session`` tells the participant: the programme's title and the
    venue (public facts, no personal data; optional fields of the events)."""
    programme = await db.get(Programme, session.programme_id)
    venue = await db.get(Venue, session.venue_id)
    return {"programme_title": programme.title if programme else None,
            "venue_name": venue.name if venue else None,
            "venue_address": venue.address if venue else None,
            "venue_postcode": venue.postcode if venue else None}


async def _event_fields(db: AsyncSession, enrolment: Enrolment, session: ProgrammeSession,
                        participant: Participant, now: datetime) -> dict[str, object]:
    return {"enrolment_id": enrolment.id, "session_id": session.id,
            "programme_id": session.programme_id, "participant_id": participant.id,
            "citizen_id": participant.subject, "session_starts_at": session.starts_at,
            "session_ends_at": session.ends_at, "occurred_at": now,
            **await session_details(db, session)}


async def enrol(*, uow: UnitOfWork, command: Enrol) -> EnrolmentResult:
    now = datetime.now(UTC)
    session = await _lock_session(uow, command.session_id)
    programme = await uow.session.get(Programme, session.programme_id)
    assert programme is not None
    if programme.status == ProgrammeStatus.DRAFT:  # not visible to citizens
        raise SessionNotFound(f"No session with id {command.session_id}.")
    if programme.status != ProgrammeStatus.PUBLISHED:
        raise ProgrammeNotOpen("This programme is not taking enrolments.",
                               rule="programme-open", current_status=programme.status)
    check_open_for_enrolment(session_status=session.status, starts_at=session.starts_at,
                             now=now)
    participant = await save_profile(uow=uow, subject=command.subject,
                                     consent=command.consent, profile=command.profile,
                                     commit=False)
    try:
        await uow.session.flush()
    except IntegrityError:  # the same citizen's first enrolment, twice at once
        await uow.rollback()
        raise TryAgain("Your details changed at the same time; try again.") from None
    check_eligible(eligibility_rules(programme), facts_of(participant), today=now.date())
    active = await uow.session.execute(select(col(Enrolment.id)).where(
        col(Enrolment.session_id) == session.id,
        col(Enrolment.participant_id) == participant.id,
        col(Enrolment.status) != EnrolmentStatus.CANCELLED.value))
    if (existing := active.scalars().first()) is not None:
        raise AlreadyEnrolled("You are already enrolled in this session.",
                              enrolment_id=str(existing))
    confirmed = await _confirmed_count(uow, session.id)
    status = place_for(confirmed=confirmed, capacity=session.capacity)
    position: int | None = None
    if status is EnrolmentStatus.WAITLISTED:  # counted before this one is added
        position = await _waitlisted_count(uow, session.id) + 1
    session.enrolment_count += 1
    enrolment = Enrolment(session_id=session.id, participant_id=participant.id,
                          status=status.value, sequence=session.enrolment_count,
                          created_at=now,
                          confirmed_at=now if status is EnrolmentStatus.CONFIRMED else None)
    uow.session.add(enrolment)
    fields = await _event_fields(uow.session, enrolment, session, participant, now)
    if position is None:
        uow.publish(EnrolmentConfirmed(**fields))
    else:
        uow.publish(EnrolmentWaitlisted(waitlist_position=position, **fields))
    try:
        await uow.commit()
    except IntegrityError:  # the same citizen enrolling twice at once (unique index)
        await uow.rollback()
        raise TryAgain("This enrolment changed at the same time; try again.") from None
    return EnrolmentResult(enrolment, position)


async def _owned_enrolment(session: AsyncSession, enrolment_id: uuid.UUID,
                           subject: str | None, staff: bool) -> tuple[Enrolment, Participant]:
    row = (await session.execute(
        select(Enrolment, Participant)
        .join(Participant, col(Participant.id) == col(Enrolment.participant_id))
        .where(col(Enrolment.id) == enrolment_id))).first()
    # Another citizen's enrolment is answered exactly like a missing one.
    if row is None or not (staff or (subject is not None and row[1].subject == subject)):
        raise EnrolmentNotFound(f"No enrolment with id {enrolment_id}.")
    return row[0], row[1]


async def cancel(*, uow: UnitOfWork, command: CancelEnrolment) -> Enrolment:
    now = datetime.now(UTC)
    enrolment, participant = await _owned_enrolment(uow.session, command.enrolment_id,
                                                    command.subject, command.by_staff)
    await _cancel(uow, enrolment, participant, now=now,
                  by="staff" if command.by_staff else "citizen")
    await uow.commit()
    return enrolment


async def _cancel(uow: UnitOfWork, enrolment: Enrolment, participant: Participant, *,
                  now: datetime, by: str) -> None:
    """Cancel ``enrolment`` under its session's lock and promote the first waitlisted one
    into a freed place (no commit)."""
    session = await _lock_session(uow, enrolment.session_id)
    await uow.session.refresh(enrolment)  # its status as of the lock
    if enrolment.status == EnrolmentStatus.CANCELLED:
        raise EnrolmentNotActive("This enrolment is already cancelled.",
                                 current_status=enrolment.status)
    if session.starts_at <= now:
        raise SessionInThePast("This session has already started.",
                               rule="cancel-before-start")
    previous = enrolment.status
    enrolment.status = EnrolmentStatus.CANCELLED.value
    enrolment.cancelled_at = now
    uow.publish(EnrolmentCancelled(
        previous_status=previous, cancelled_by=by,
        **await _event_fields(uow.session, enrolment, session, participant, now)))
    if previous == EnrolmentStatus.CONFIRMED:
        await _promote(uow, session, places=1, now=now, freed_by=enrolment.id)


async def _promote(uow: UnitOfWork, session: ProgrammeSession, *, places: int,
                   now: datetime, freed_by: uuid.UUID | None) -> int:
    """Give up to ``places`` free places to the first on the waitlist, in arrival order, one
    WaitlistPromoted each (under the session's lock; no commit). Returns how many."""
    if places <= 0:
        return 0
    rows = (await uow.session.execute(
        select(Enrolment, Participant)
        .join(Participant, col(Participant.id) == col(Enrolment.participant_id))
        .where(col(Enrolment.session_id) == session.id,
               col(Enrolment.status) == EnrolmentStatus.WAITLISTED.value)
        .order_by(col(Enrolment.sequence)).limit(places))).all()
    for promoted, promoted_participant in rows:
        promoted.status = EnrolmentStatus.CONFIRMED.value
        promoted.confirmed_at = promoted.promoted_at = now
        uow.publish(WaitlistPromoted(
            freed_by_enrolment_id=freed_by,
            **await _event_fields(uow.session, promoted, session, promoted_participant, now)))
    return len(rows)


async def _confirmed_count(uow: UnitOfWork, session_id: uuid.UUID) -> int:
    return int((await uow.session.execute(
        select(func.count()).select_from(Enrolment).where(
            col(Enrolment.session_id) == session_id,
            col(Enrolment.status) == EnrolmentStatus.CONFIRMED.value))).scalar_one())


async def cancel_session(*, uow: UnitOfWork, command: CancelSession) -> ProgrammeSession:
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
        await uow.commit()  # nothing changed: end the transaction (and the lock)
        return session
    check_cancellable(starts_at=session.starts_at, now=now)
    session.status = SessionStatus.CANCELLED.value
    session.cancelled_at = now
    session.cancellation_reason = command.reason
    session.cancelled_by = command.actor
    rows = (await uow.session.execute(
        select(Enrolment, Participant)
        .join(Participant, col(Participant.id) == col(Enrolment.participant_id))
        .where(col(Enrolment.session_id) == session.id,
               col(Enrolment.status) != EnrolmentStatus.CANCELLED.value)
        .order_by(col(Enrolment.sequence)))).all()
    for enrolment, participant in rows:
        previous = enrolment.status
        enrolment.status = EnrolmentStatus.CANCELLED.value
        enrolment.cancelled_at = now
        uow.publish(EnrolmentCancelled(
            previous_status=previous, cancelled_by="session-cancelled",
            **await _event_fields(uow.session, enrolment, session, participant, now)))
    uow.publish(events.SessionCancelled(
        session_id=session.id, programme_id=session.programme_id, venue_id=session.venue_id,
        starts_at=session.starts_at, ends_at=session.ends_at, reason=command.reason,
        participant_ids=[p.id for _, p in rows],
        citizen_ids=list(dict.fromkeys(p.subject for _, p in rows if p.subject)),
        cancelled_enrolment_ids=[e.id for e, _ in rows], cancelled_by=command.actor,
        occurred_at=now, **await session_details(uow.session, session)))
    await uow.commit()
    return session


async def change_capacity(*, uow: UnitOfWork, command: ChangeCapacity) -> ProgrammeSession:
    """Staff change a session's places. More places go to the first on the waitlist, in
    arrival order (one WaitlistPromoted each); fewer than the confirmed enrolments is
    refused (cancel enrolments first). The same capacity again changes nothing."""
    now = datetime.now(UTC)
    session = await _lock_session(uow, command.session_id)
    confirmed = await _confirmed_count(uow, session.id)
    check_capacity(session_status=session.status, starts_at=session.starts_at,
                   capacity=command.capacity, confirmed=confirmed, now=now)
    if command.capacity == session.capacity:
        await uow.commit()  # nothing changed
        return session
    session.capacity = command.capacity
    await _promote(uow, session, places=command.capacity - confirmed, now=now, freed_by=None)
    await uow.commit()
    return session


async def record_attendance(*, uow: UnitOfWork, command: RecordAttendance) -> Enrolment:
    now = datetime.now(UTC)
    enrolment, _ = await _owned_enrolment(uow.session, command.enrolment_id, None, True)
    session = await _lock_session(uow, enrolment.session_id)
    await uow.session.refresh(enrolment)
    if enrolment.status != EnrolmentStatus.CONFIRMED:
        raise AttendanceNotAllowed("Attendance is recorded only for confirmed enrolments.",
                                   rule="confirmed-only", current_status=enrolment.status)
    if session.starts_at > now:
        raise AttendanceNotAllowed("Attendance can be recorded once the session has started.",
                                   rule="session-started")
    enrolment.attended = command.attended
    enrolment.attendance_recorded_at = now
    await uow.commit()
    return enrolment


# -- queries ---------------------------------------------------------------------------------

async def get_enrolment(*, session: AsyncSession, enrolment_id: uuid.UUID,
                        subject: str | None, staff: bool) -> Enrolment:
    return (await _owned_enrolment(session, enrolment_id, subject, staff))[0]


async def list_enrolments(*, session: AsyncSession, subject: str | None,
                          session_id: uuid.UUID | None = None,
                          status: EnrolmentStatus | None = None) -> list[Enrolment]:
    """The caller's enrolments (``subject``), or everyone's (staff: ``subject=None``)."""
    query = select(Enrolment).order_by(col(Enrolment.created_at), col(Enrolment.sequence))
    if subject is not None:
        query = query.join(Participant, col(Participant.id) == col(Enrolment.participant_id)) \
            .where(col(Participant.subject) == subject)
    if session_id is not None:
        query = query.where(col(Enrolment.session_id) == session_id)
    if status is not None:
        query = query.where(col(Enrolment.status) == status.value)
    return list((await session.execute(query)).scalars())


async def waitlist_positions(*, session: AsyncSession,
                             enrolments: list[Enrolment]) -> dict[uuid.UUID, int]:
    """The current place in the queue of each waitlisted enrolment (1 = next)."""
    session_ids = {e.session_id for e in enrolments if e.status == EnrolmentStatus.WAITLISTED}
    if not session_ids:
        return {}
    rows = (await session.execute(
        select(col(Enrolment.id), col(Enrolment.session_id))
        .where(col(Enrolment.session_id).in_(session_ids),
               col(Enrolment.status) == EnrolmentStatus.WAITLISTED.value)
        .order_by(col(Enrolment.session_id), col(Enrolment.sequence)))).all()
    positions: dict[uuid.UUID, int] = {}
    seen: dict[uuid.UUID, int] = {}
    for enrolment_id, sid in rows:
        seen[sid] = seen.get(sid, 0) + 1
        positions[enrolment_id] = seen[sid]
    return positions
