"""Programmes, venues and sessions: what staff manage and everyone may browse."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.inclusion import ProgrammePublished, SessionScheduled
from inclusion.domain.programmes import (
    EligibilityRules,
    ProgrammeKind,
    ProgrammeNotOpen,
    ProgrammeStatus,
    check_transition,
)
from inclusion.domain.sessions import SessionStatus, check_times
from inclusion.persistence.tables import Enrolment, Programme, ProgrammeSession, Venue
from servicekit.errors import DomainError, NotFound
from servicekit.uow import UnitOfWork


class ProgrammeNotFound(NotFound):
    code, title = "programme-not-found", "Programme not found"


class VenueNotFound(NotFound):
    code, title = "venue-not-found", "Venue not found"


class SessionNotFound(NotFound):
    code, title = "session-not-found", "Session not found"


class UnknownReference(DomainError):
    """The request body names a programme or venue that does not exist (not a 404: the
    addressed resource, the collection, exists)."""

    status, code, title = 422, "unknown-reference", "Refers to something that does not exist"


# -- programmes ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreateProgramme:
    title: str
    kind: ProgrammeKind
    delivered_by: str
    description: str = ""
    eligibility: EligibilityRules = field(default_factory=EligibilityRules)
    id: uuid.UUID | None = None  # seed data brings stable ids


@dataclass(frozen=True)
class ChangeProgrammeStatus:
    programme_id: uuid.UUID
    status: ProgrammeStatus
    actor: str | None = None


async def create_programme(*, uow: UnitOfWork, command: CreateProgramme,
                           commit: bool = True) -> Programme:
    now = datetime.now(UTC)
    programme = Programme(
        id=command.id or uuid.uuid4(), title=command.title, kind=command.kind.value,
        delivered_by=command.delivered_by, description=command.description,
        status=ProgrammeStatus.DRAFT.value, eligibility=asdict(command.eligibility),
        created_at=now, updated_at=now)
    uow.session.add(programme)
    if commit:
        await uow.commit()
    return programme


async def change_programme_status(*, uow: UnitOfWork, command: ChangeProgrammeStatus,
                                  commit: bool = True) -> Programme:
    """Publish, close or archive; publishing emits ProgrammePublished."""
    programme = await uow.session.get(Programme, command.programme_id, with_for_update=True)
    if programme is None:
        raise ProgrammeNotFound(f"No programme with id {command.programme_id}.")
    check_transition(programme.status, command.status)
    now = datetime.now(UTC)
    programme.status = command.status.value
    programme.version += 1
    programme.updated_at = now
    if command.status is ProgrammeStatus.PUBLISHED:
        programme.published_at = now
        uow.publish(ProgrammePublished(
            programme_id=programme.id, kind=programme.kind, title=programme.title,
            delivered_by=programme.delivered_by, published_by=command.actor, occurred_at=now))
    if commit:
        await uow.commit()
    return programme


def is_public(programme: Programme) -> bool:
    return programme.status in (ProgrammeStatus.PUBLISHED, ProgrammeStatus.CLOSED)


async def find_programme(*, session: AsyncSession, programme_id: uuid.UUID,
                         staff: bool) -> Programme:
    programme = await session.get(Programme, programme_id)
    if programme is None or not (staff or is_public(programme)):
        raise ProgrammeNotFound(f"No programme with id {programme_id}.")
    return programme


async def list_programmes(*, session: AsyncSession, staff: bool,
                          kind: ProgrammeKind | None = None,
                          status: ProgrammeStatus | None = None) -> list[Programme]:
    query = select(Programme).order_by(col(Programme.title), col(Programme.id))
    if not staff:
        query = query.where(col(Programme.status).in_(
            [ProgrammeStatus.PUBLISHED.value, ProgrammeStatus.CLOSED.value]))
    if kind is not None:
        query = query.where(col(Programme.kind) == kind.value)
    if status is not None:
        query = query.where(col(Programme.status) == status.value)
    return list((await session.execute(query)).scalars())


# -- venues ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreateVenue:
    name: str
    address: str
    postcode: str
    ward: str
    latitude: float
    longitude: float
    accessibility_notes: str = ""
    opening_times: list[dict[str, str]] = field(default_factory=list)
    id: uuid.UUID | None = None


async def create_venue(*, uow: UnitOfWork, command: CreateVenue, commit: bool = True) -> Venue:
    venue = Venue(id=command.id or uuid.uuid4(), name=command.name, address=command.address,
                  postcode=command.postcode.upper(), ward=command.ward,
                  latitude=command.latitude, longitude=command.longitude,
                  accessibility_notes=command.accessibility_notes,
                  opening_times=list(command.opening_times), created_at=datetime.now(UTC))
    uow.session.add(venue)
    if commit:
        await uow.commit()
    return venue


async def find_venue(*, session: AsyncSession, venue_id: uuid.UUID) -> Venue:
    venue = await session.get(Venue, venue_id)
    if venue is None:
        raise VenueNotFound(f"No venue with id {venue_id}.")
    return venue


async def list_venues(*, session: AsyncSession, ward: str | None = None) -> list[Venue]:
    query = select(Venue).order_by(col(Venue.name), col(Venue.id))
    if ward is not None:
        query = query.where(col(Venue.ward) == ward)
    return list((await session.execute(query)).scalars())


# -- sessions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScheduleSession:
    programme_id: uuid.UUID
    venue_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int
    id: uuid.UUID | None = None


async def schedule_session(*, uow: UnitOfWork, command: ScheduleSession,
                           commit: bool = True) -> ProgrammeSession:
    now = datetime.now(UTC)
    check_times(command.starts_at, command.ends_at, now=now)
    programme = await uow.session.get(Programme, command.programme_id)
    if programme is None:
        raise UnknownReference(f"No programme with id {command.programme_id}.",
                               rule="programme-exists")
    if programme.status == ProgrammeStatus.ARCHIVED:
        raise ProgrammeNotOpen("An archived programme cannot have new sessions.",
                               current_status=programme.status)
    if await uow.session.get(Venue, command.venue_id) is None:
        raise UnknownReference(f"No venue with id {command.venue_id}.", rule="venue-exists")
    session = ProgrammeSession(
        id=command.id or uuid.uuid4(), programme_id=command.programme_id,
        venue_id=command.venue_id, starts_at=command.starts_at, ends_at=command.ends_at,
        capacity=command.capacity, status=SessionStatus.SCHEDULED.value, created_at=now)
    uow.session.add(session)
    uow.publish(SessionScheduled(
        session_id=session.id, programme_id=session.programme_id, venue_id=session.venue_id,
        starts_at=session.starts_at, ends_at=session.ends_at, capacity=session.capacity,
        occurred_at=now))
    if commit:
        await uow.commit()
    return session


@dataclass(frozen=True)
class SessionView:
    """A session with what a reader needs to choose it."""

    session: ProgrammeSession
    programme: Programme
    venue: Venue
    confirmed: int
    waitlisted: int


async def session_views(*, session: AsyncSession, staff: bool,
                        session_ids: list[uuid.UUID] | None = None,
                        programme_id: uuid.UUID | None = None,
                        venue_id: uuid.UUID | None = None,
                        upcoming_only: bool = False) -> list[SessionView]:
    query = (select(ProgrammeSession, Programme, Venue)
             .join(Programme, col(Programme.id) == col(ProgrammeSession.programme_id))
             .join(Venue, col(Venue.id) == col(ProgrammeSession.venue_id))
             .order_by(col(ProgrammeSession.starts_at), col(ProgrammeSession.id)))
    if not staff:
        query = query.where(col(Programme.status).in_(
            [ProgrammeStatus.PUBLISHED.value, ProgrammeStatus.CLOSED.value]))
    if session_ids is not None:
        query = query.where(col(ProgrammeSession.id).in_(session_ids))
    if programme_id is not None:
        query = query.where(col(ProgrammeSession.programme_id) == programme_id)
    if venue_id is not None:
        query = query.where(col(ProgrammeSession.venue_id) == venue_id)
    if upcoming_only:
        query = query.where(col(ProgrammeSession.starts_at) > datetime.now(UTC),
                            col(ProgrammeSession.status) == SessionStatus.SCHEDULED.value)
    rows = (await session.execute(query)).all()
    counts: dict[tuple[uuid.UUID, str], int] = {}
    if rows:
        ids = [row[0].id for row in rows]
        result = await session.execute(
            select(col(Enrolment.session_id), col(Enrolment.status), func.count())
            .where(col(Enrolment.session_id).in_(ids))
            .group_by(col(Enrolment.session_id), col(Enrolment.status)))
        counts = {(sid, status): n for sid, status, n in result.all()}
    return [SessionView(s, p, v, counts.get((s.id, "confirmed"), 0),
                        counts.get((s.id, "waitlisted"), 0)) for s, p, v in rows]


async def find_session_view(*, session: AsyncSession, session_id: uuid.UUID,
                            staff: bool) -> SessionView:
    views = await session_views(session=session, staff=staff, session_ids=[session_id])
    if not views:
        raise SessionNotFound(f"No session with id {session_id}.")
    return views[0]


def eligibility_rules(programme: Programme) -> EligibilityRules:
    data: dict[str, Any] = programme.eligibility or {}
    known = EligibilityRules.__dataclass_fields__
    return EligibilityRules(**{k: v for k, v in data.items() if k in known})
