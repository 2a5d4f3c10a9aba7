"""Programme sessions: the session lock, the listing with programme and venue, the counts
of places taken."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import col

from inclusion.domain.sessions import SessionStatus
from inclusion.persistence.programmes import PUBLIC
from inclusion.persistence.tables import Enrolment, Programme, ProgrammeSession, Venue
from servicekit.repository import Repository


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
