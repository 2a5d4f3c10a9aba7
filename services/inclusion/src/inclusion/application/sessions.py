"""Programme sessions: staff schedule them; everyone reads them with their places left.
(Cancelling a session and changing its places change enrolments: see enrolments.py.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.inclusion import SessionScheduled
from inclusion.application.programmes import UnknownReference
from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.domain.programmes import ProgrammeNotOpen, ProgrammeStatus
from inclusion.domain.sessions import SessionStatus, check_times
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Programme, ProgrammeSession, Venue
from servicekit.errors import NotFound


class SessionNotFound(NotFound):
    code, title = "session-not-found", "Session not found"


@dataclass(frozen=True)
class ScheduleSession:
    programme_id: uuid.UUID
    venue_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int
    id: uuid.UUID | None = None


async def schedule_session(
    *, uow: InclusionUnitOfWork, command: ScheduleSession
) -> ProgrammeSession:
    now = datetime.now(UTC)
    check_times(command.starts_at, command.ends_at, now=now)
    programme = await uow.programmes.get(command.programme_id)
    if programme is None:
        raise UnknownReference(
            f"No programme with id {command.programme_id}.", rule="programme-exists"
        )
    if programme.status == ProgrammeStatus.ARCHIVED:
        raise ProgrammeNotOpen(
            "An archived programme cannot have new sessions.", current_status=programme.status
        )
    if await uow.venues.get(command.venue_id) is None:
        raise UnknownReference(f"No venue with id {command.venue_id}.", rule="venue-exists")
    session = ProgrammeSession(
        id=command.id or uuid.uuid4(),
        programme_id=command.programme_id,
        venue_id=command.venue_id,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        capacity=command.capacity,
        status=SessionStatus.SCHEDULED.value,
        created_at=now,
    )
    uow.sessions.add(session)
    uow.publish(
        SessionScheduled(
            session_id=session.id,
            programme_id=session.programme_id,
            venue_id=session.venue_id,
            starts_at=session.starts_at,
            ends_at=session.ends_at,
            capacity=session.capacity,
            occurred_at=now,
        )
    )
    return session


def places_left(session: ProgrammeSession, confirmed: int) -> int:
    """Free places: none in a cancelled session."""
    if session.status == SessionStatus.CANCELLED:
        return 0
    return max(0, session.capacity - confirmed)


@dataclass(frozen=True)
class SessionView:
    """A session with what a reader needs to choose it."""

    session: ProgrammeSession
    programme: Programme
    venue: Venue
    confirmed: int
    waitlisted: int

    @property
    def places_left(self) -> int:
        return places_left(self.session, self.confirmed)


async def session_views(
    *,
    repos: Repositories,
    staff: bool,
    session_ids: list[uuid.UUID] | None = None,
    programme_id: uuid.UUID | None = None,
    venue_id: uuid.UUID | None = None,
    upcoming_only: bool = False,
) -> list[SessionView]:
    """By start time; others than staff see only published and closed programmes';
    ``upcoming_only``: scheduled sessions that have not started."""
    rows = await repos.sessions.with_programme_and_venue(
        public_only=not staff,
        session_ids=session_ids,
        programme_id=programme_id,
        venue_id=venue_id,
        scheduled_after=datetime.now(UTC) if upcoming_only else None,
    )
    counts = await repos.sessions.enrolment_counts([s.id for s, _, _ in rows])
    return [
        SessionView(
            s, p, v, counts.get((s.id, "confirmed"), 0), counts.get((s.id, "waitlisted"), 0)
        )
        for s, p, v in rows
    ]


async def find_session_view(
    *, repos: Repositories, session_id: uuid.UUID, staff: bool
) -> SessionView:
    views = await session_views(repos=repos, staff=staff, session_ids=[session_id])
    if not views:
        raise SessionNotFound(f"No session with id {session_id}.")
    return views[0]


async def session_details(repos: Repositories, session: ProgrammeSession) -> dict[str, object]:
    """What a message about ``session`` tells the participant: the programme's title and the
    venue (public facts, no personal data; optional fields of the events)."""
    programme = await repos.programmes.get(session.programme_id)
    venue = await repos.venues.get(session.venue_id)
    return {
        "programme_title": programme.title if programme else None,
        "venue_name": venue.name if venue else None,
        "venue_address": venue.address if venue else None,
        "venue_postcode": venue.postcode if venue else None,
    }
