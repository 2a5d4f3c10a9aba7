"""Programme sessions: the session lock, the listing with programme and venue, the counts
of places taken, and the lean read of upcoming sessions at some venues (help near me)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlmodel import col

from inclusion.domain.programmes import ProgrammeStatus
from inclusion.domain.sessions import EnrolmentStatus, SessionStatus
from inclusion.persistence.programmes import PUBLIC
from inclusion.persistence.tables import Enrolment, Programme, ProgrammeSession, Venue
from servicekit.repository import Repository


@dataclass(frozen=True)
class UpcomingSession:
    """A scheduled session of a published programme, as help near me lists it: the columns
    it shows, not the rows (no programme eligibility or venue opening times to decode)."""

    id: uuid.UUID
    programme_id: uuid.UUID
    programme_title: str
    programme_kind: str
    venue_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int
    confirmed: int

    @property
    def places_left(self) -> int:
        return max(0, self.capacity - self.confirmed)


class SessionRepository(Repository):
    async def lock(self, session_id: uuid.UUID) -> ProgrammeSession | None:
        """The session's row as it is now, locked until the transaction ends: ``FOR UPDATE``
        on PostgreSQL; on SQLite the transaction already holds the write lock."""
        return await self.locked(ProgrammeSession, session_id)

    async def with_programme_and_venue(
        self,
        *,
        public_only: bool,
        session_ids: list[uuid.UUID] | None = None,
        programme_id: uuid.UUID | None = None,
        venue_id: uuid.UUID | None = None,
        scheduled_after: datetime | None = None,
    ) -> list[tuple[ProgrammeSession, Programme, Venue]]:
        """By start time; ``public_only``: of published and closed programmes;
        ``scheduled_after``: only sessions still scheduled that start after it."""
        query = (
            select(ProgrammeSession, Programme, Venue)
            .join(Programme, col(Programme.id) == col(ProgrammeSession.programme_id))
            .join(Venue, col(Venue.id) == col(ProgrammeSession.venue_id))
            .order_by(col(ProgrammeSession.starts_at), col(ProgrammeSession.id))
        )
        if public_only:
            query = query.where(col(Programme.status).in_(PUBLIC))
        if session_ids is not None:
            query = query.where(col(ProgrammeSession.id).in_(session_ids))
        if programme_id is not None:
            query = query.where(col(ProgrammeSession.programme_id) == programme_id)
        if venue_id is not None:
            query = query.where(col(ProgrammeSession.venue_id) == venue_id)
        if scheduled_after is not None:
            query = query.where(
                col(ProgrammeSession.starts_at) > scheduled_after,
                col(ProgrammeSession.status) == SessionStatus.SCHEDULED.value,
            )
        return [(s, p, v) for s, p, v in (await self.db.execute(query)).all()]

    async def venues_with_upcoming(self, *, after: datetime, kind: str) -> set[uuid.UUID]:
        """The venues holding a scheduled session of a published ``kind`` programme that
        starts after ``after``."""
        rows = await self.db.execute(
            select(col(ProgrammeSession.venue_id))
            .distinct()
            .join(Programme, col(Programme.id) == col(ProgrammeSession.programme_id))
            .where(*_upcoming_published(after), col(Programme.kind) == kind)
        )
        return set(rows.scalars())

    async def upcoming_at(
        self, venue_ids: Collection[uuid.UUID], *, after: datetime, kind: str | None = None
    ) -> list[UpcomingSession]:
        """The scheduled sessions of published programmes (of ``kind`` if given) at
        ``venue_ids`` that start after ``after``, by start time, with their confirmed
        enrolments counted: one query whatever the number of sessions."""
        if not venue_ids:
            return []
        confirmed = (
            select(func.count())
            .where(
                col(Enrolment.session_id) == col(ProgrammeSession.id),
                col(Enrolment.status) == EnrolmentStatus.CONFIRMED.value,
            )
            .correlate(ProgrammeSession)
            .scalar_subquery()
        )
        query = (
            select(
                col(ProgrammeSession.id),
                col(ProgrammeSession.programme_id),
                col(Programme.title),
                col(Programme.kind),
                col(ProgrammeSession.venue_id),
                col(ProgrammeSession.starts_at),
                col(ProgrammeSession.ends_at),
                col(ProgrammeSession.capacity),
                confirmed,
            )
            .join(Programme, col(Programme.id) == col(ProgrammeSession.programme_id))
            .where(*_upcoming_published(after), col(ProgrammeSession.venue_id).in_(venue_ids))
            .order_by(col(ProgrammeSession.starts_at), col(ProgrammeSession.id))
        )
        if kind is not None:
            query = query.where(col(Programme.kind) == kind)
        return [UpcomingSession(*row) for row in (await self.db.execute(query)).all()]

    async def enrolment_counts(
        self, session_ids: list[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, str], int]:
        """How many enrolments each session has, by status: {(session id, status): n}."""
        if not session_ids:
            return {}
        result = await self.db.execute(
            select(col(Enrolment.session_id), col(Enrolment.status), func.count())
            .where(col(Enrolment.session_id).in_(session_ids))
            .group_by(col(Enrolment.session_id), col(Enrolment.status))
        )
        return {(sid, status): n for sid, status, n in result.all()}

    async def scheduled_between(self, after: datetime, until: datetime) -> list[ProgrammeSession]:
        """Scheduled sessions starting after ``after`` and no later than ``until``."""
        return list(
            (
                await self.db.execute(
                    select(ProgrammeSession).where(
                        col(ProgrammeSession.status) == SessionStatus.SCHEDULED.value,
                        col(ProgrammeSession.starts_at) > after,
                        col(ProgrammeSession.starts_at) <= until,
                    )
                )
            ).scalars()
        )


def _upcoming_published(after: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        col(Programme.status) == ProgrammeStatus.PUBLISHED.value,
        col(ProgrammeSession.status) == SessionStatus.SCHEDULED.value,
        col(ProgrammeSession.starts_at) > after,
    )
