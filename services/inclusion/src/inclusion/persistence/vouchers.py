"""Data-SIM vouchers: stock, the next free one, who holds which."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlmodel import col

from inclusion.persistence.tables import Participant, Programme, Voucher
from servicekit.repository import Repository


class VoucherRepository(Repository):
    async def held(self, programme_id: uuid.UUID, participant_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the participant's voucher from the programme, if any."""
        return (
            (
                await self.db.execute(
                    select(col(Voucher.id)).where(
                        col(Voucher.programme_id) == programme_id,
                        col(Voucher.participant_id) == participant_id,
                    )
                )
            )
            .scalars()
            .first()
        )

    async def next_free(self, programme_id: uuid.UUID) -> Voucher | None:
        """The programme's first unallocated voucher (oldest first)."""
        return (
            (
                await self.db.execute(
                    select(Voucher)
                    .where(
                        col(Voucher.programme_id) == programme_id,
                        col(Voucher.participant_id).is_(None),
                    )
                    .order_by(col(Voucher.added_at), col(Voucher.code))
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )

    async def stock(self) -> list[tuple[uuid.UUID, str, int, int]]:
        """(programme id, title, vouchers, allocated) of each programme with vouchers, by
        title."""
        rows = (
            await self.db.execute(
                select(
                    col(Programme.id),
                    col(Programme.title),
                    func.count(col(Voucher.id)),
                    func.count(col(Voucher.participant_id)),
                )
                .join(Voucher, col(Voucher.programme_id) == col(Programme.id))
                .group_by(col(Programme.id), col(Programme.title))
                .order_by(col(Programme.title))
            )
        ).all()
        return [(pid, title, total, allocated) for pid, title, total, allocated in rows]

    async def of_subject(self, subject: str) -> list[Voucher]:
        """The citizen's vouchers, by allocation time."""
        return list(
            (
                await self.db.execute(
                    select(Voucher)
                    .join(Participant, col(Participant.id) == col(Voucher.participant_id))
                    .where(col(Participant.subject) == subject)
                    .order_by(col(Voucher.allocated_at))
                )
            ).scalars()
        )
