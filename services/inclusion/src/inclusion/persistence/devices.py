"""Devices and their loans."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from inclusion.persistence.tables import Device, DeviceLoan
from servicekit.repository import Repository


class DeviceRepository(Repository):
    def add_loan(self, loan: DeviceLoan) -> None:
        self.db.add(loan)

    async def lock(self, device_id: uuid.UUID) -> Device | None:
        """The device's row as it is now, locked until the transaction ends (``FOR UPDATE``
        on PostgreSQL; SQLite serialises writers)."""
        return await self.locked(Device, device_id)

    async def open_loan(self, device_id: uuid.UUID) -> DeviceLoan | None:
        return (
            (
                await self.db.execute(
                    select(DeviceLoan).where(
                        col(DeviceLoan.device_id) == device_id,
                        col(DeviceLoan.returned_at).is_(None),
                    )
                )
            )
            .scalars()
            .first()
        )

    async def last_returned_at(self, device_id: uuid.UUID) -> datetime | None:
        return (
            (
                await self.db.execute(
                    select(col(DeviceLoan.returned_at))
                    .where(col(DeviceLoan.device_id) == device_id)
                    .order_by(col(DeviceLoan.returned_at).desc())
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )

    async def matching(self, device_ids: list[uuid.UUID] | None = None) -> list[Device]:
        """By make, model and serial."""
        query = select(Device).order_by(col(Device.make), col(Device.model), col(Device.serial))
        if device_ids is not None:
            query = query.where(col(Device.id).in_(device_ids))
        return list((await self.db.execute(query)).scalars())

    async def loans_of(self, device_ids: list[uuid.UUID]) -> list[DeviceLoan]:
        """Newest first."""
        if not device_ids:
            return []
        return list(
            (
                await self.db.execute(
                    select(DeviceLoan)
                    .where(col(DeviceLoan.device_id).in_(device_ids))
                    .order_by(col(DeviceLoan.loaned_at).desc())
                )
            ).scalars()
        )

    async def overdue_loans(self, now: datetime) -> list[DeviceLoan]:
        """Open loans due before ``now``."""
        return list(
            (
                await self.db.execute(
                    select(DeviceLoan).where(
                        col(DeviceLoan.returned_at).is_(None), col(DeviceLoan.due_at) < now
                    )
                )
            ).scalars()
        )
