"""The facts the staff reports count: confirmed enrolments, loans and allocated vouchers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from inclusion.domain.sessions import EnrolmentStatus
from inclusion.persistence.tables import (
    Device,
    DeviceLoan,
    Enrolment,
    ProgrammeSession,
    Venue,
    Voucher,
)
from servicekit.repository import Repository


class ReportRepository(Repository):
    async def confirmed_enrolments(
        self,
    ) -> list[tuple[uuid.UUID, str, datetime, uuid.UUID, bool | None]]:
        """(programme id, venue's ward, session start, participant id, attended) of each
        confirmed enrolment."""
        rows = await self.db.execute(
            select(
                col(ProgrammeSession.programme_id),
                col(Venue.ward),
                col(ProgrammeSession.starts_at),
                col(Enrolment.participant_id),
                col(Enrolment.attended),
            )
            .join(ProgrammeSession, col(ProgrammeSession.id) == col(Enrolment.session_id))
            .join(Venue, col(Venue.id) == col(ProgrammeSession.venue_id))
            .where(col(Enrolment.status) == EnrolmentStatus.CONFIRMED.value)
        )
        return [tuple(row) for row in rows.all()]

    async def programme_loans(self) -> list[tuple[uuid.UUID, datetime, datetime | None, uuid.UUID]]:
        """(programme id, loaned at, returned at, participant id) of each loan of a device
        that belongs to a programme."""
        rows = await self.db.execute(
            select(
                col(Device.programme_id),
                col(DeviceLoan.loaned_at),
                col(DeviceLoan.returned_at),
                col(DeviceLoan.participant_id),
            )
            .join(Device, col(Device.id) == col(DeviceLoan.device_id))
            .where(col(Device.programme_id).is_not(None))
        )
        return [tuple(row) for row in rows.all()]

    async def allocated_vouchers(self) -> list[tuple[uuid.UUID, datetime, uuid.UUID]]:
        """(programme id, allocated at, participant id) of each allocated voucher."""
        rows = await self.db.execute(
            select(
                col(Voucher.programme_id), col(Voucher.allocated_at), col(Voucher.participant_id)
            ).where(col(Voucher.participant_id).is_not(None))
        )
        return [tuple(row) for row in rows.all()]
