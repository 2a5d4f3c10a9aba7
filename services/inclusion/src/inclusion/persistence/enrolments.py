"""Participants and enrolments: lookups, counts of places and the waitlist in arrival
order."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import col

from inclusion.domain.sessions import EnrolmentStatus
from inclusion.persistence.tables import Enrolment, Participant, ProgrammeSession
from servicekit.repository import Repository

CANCELLED = EnrolmentStatus.CANCELLED.value


class ParticipantRepository(Repository):
    async def get(self, participant_id: uuid.UUID) -> Participant | None:
        return await self.db.get(Participant, participant_id)

    async def by_subject(self, subject: str) -> Participant | None:
        return (
            (await self.db.execute(select(Participant).where(col(Participant.subject) == subject)))
            .scalars()
            .first()
        )

    async def find(
        self, *, participant_id: uuid.UUID | None, subject: str | None, erased: bool = True
    ) -> Participant | None:
        """By id if given, else by subject; ``erased=False`` leaves erased ones out."""
        query = select(Participant)
        if not erased:
            query = query.where(col(Participant.erased_at).is_(None))
        query = (
            query.where(col(Participant.id) == participant_id)
            if participant_id
            else query.where(col(Participant.subject) == subject)
        )
        return (await self.db.execute(query)).scalars().first()

    async def lock(self, participant: Participant) -> None:
        """Send pending changes, then reload ``participant`` locked until the transaction
        ends."""
        await self.db.flush()
        await self.db.refresh(participant, with_for_update=True)


class EnrolmentRepository(Repository):
    async def reload(self, enrolment: Enrolment) -> None:
        """``enrolment`` as it is in the database now (e.g. once its session is locked)."""
        await self.db.refresh(enrolment)

    async def with_participant(
        self, enrolment_id: uuid.UUID
    ) -> tuple[Enrolment, Participant] | None:
        row = (
            await self.db.execute(
                select(Enrolment, Participant)
                .join(Participant, col(Participant.id) == col(Enrolment.participant_id))
                .where(col(Enrolment.id) == enrolment_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def active_id(self, session_id: uuid.UUID, participant_id: uuid.UUID) -> uuid.UUID | None:
        """The participant's enrolment in the session that is not cancelled, if any."""
        return (
            (
                await self.db.execute(
                    select(col(Enrolment.id)).where(
                        col(Enrolment.session_id) == session_id,
                        col(Enrolment.participant_id) == participant_id,
                        col(Enrolment.status) != CANCELLED,
                    )
                )
            )
            .scalars()
            .first()
        )

    async def count(self, session_id: uuid.UUID, status: EnrolmentStatus) -> int:
        return int(
            (
                await self.db.execute(
                    select(func.count())
                    .select_from(Enrolment)
                    .where(
                        col(Enrolment.session_id) == session_id,
                        col(Enrolment.status) == status.value,
                    )
                )
            ).scalar_one()
        )

    async def in_session(
        self,
        session_id: uuid.UUID,
        *,
        status: EnrolmentStatus | None = None,
        limit: int | None = None,
    ) -> list[tuple[Enrolment, Participant]]:
        """The session's enrolments of ``status`` (default: all but cancelled ones) with
        their participants, in arrival order."""
        query = (
            select(Enrolment, Participant)
            .join(Participant, col(Participant.id) == col(Enrolment.participant_id))
            .where(
                col(Enrolment.session_id) == session_id,
                col(Enrolment.status) != CANCELLED
                if status is None
                else col(Enrolment.status) == status.value,
            )
            .order_by(col(Enrolment.sequence))
        )
        if limit is not None:
            query = query.limit(limit)
        return [(e, p) for e, p in (await self.db.execute(query)).all()]

    async def matching(
        self,
        *,
        subject: str | None = None,
        session_id: uuid.UUID | None = None,
        status: EnrolmentStatus | None = None,
    ) -> list[Enrolment]:
        """By creation time; of the citizen ``subject`` if given."""
        query = select(Enrolment).order_by(col(Enrolment.created_at), col(Enrolment.sequence))
        if subject is not None:
            query = query.join(
                Participant, col(Participant.id) == col(Enrolment.participant_id)
            ).where(col(Participant.subject) == subject)
        if session_id is not None:
            query = query.where(col(Enrolment.session_id) == session_id)
        if status is not None:
            query = query.where(col(Enrolment.status) == status.value)
        return list((await self.db.execute(query)).scalars())

    async def waitlists(self, session_ids: set[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(enrolment id, session id) of the waitlisted enrolments of these sessions, by
        session and arrival."""
        rows = await self.db.execute(
            select(col(Enrolment.id), col(Enrolment.session_id))
            .where(
                col(Enrolment.session_id).in_(session_ids),
                col(Enrolment.status) == EnrolmentStatus.WAITLISTED.value,
            )
            .order_by(col(Enrolment.session_id), col(Enrolment.sequence))
        )
        return [(eid, sid) for eid, sid in rows.all()]

    async def upcoming_of(self, participant_id: uuid.UUID, *, after: datetime) -> list[Enrolment]:
        """The participant's enrolments, not cancelled, in sessions starting after
        ``after``, by session id (the order locks are taken in)."""
        return list(
            (
                await self.db.execute(
                    select(Enrolment)
                    .join(ProgrammeSession, col(ProgrammeSession.id) == col(Enrolment.session_id))
                    .where(
                        col(Enrolment.participant_id) == participant_id,
                        col(Enrolment.status) != CANCELLED,
                        col(ProgrammeSession.starts_at) > after,
                    )
                    .order_by(col(Enrolment.session_id))
                )
            )
            .scalars()
            .all()
        )
