"""The ``notify_callback`` table's queries: callbacks to make, claimed by the worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from notifications.persistence.tables import NotifyCallback, NotifyService
from servicekit.repository import Repository

C = NotifyCallback.__table__  # type: ignore[attr-defined]


class NotifyCallbackRepository(Repository):
    def add(self, callback: NotifyCallback) -> None:
        self.db.add(callback)

    async def services_with_callbacks(
        self, service_ids: Iterable[uuid.UUID], *, kind: str
    ) -> set[uuid.UUID]:
        """Those of ``service_ids`` with a callback URL of ``kind``."""
        ids = set(service_ids)
        if not ids:
            return set()
        column = (
            NotifyService.delivery_callback_url
            if kind == "delivery-status"
            else NotifyService.inbound_callback_url
        )
        rows = await self.db.execute(
            sa.select(col(NotifyService.id)).where(
                col(NotifyService.id).in_(ids), col(column).is_not(None)
            )
        )
        return {uuid.UUID(str(r[0])) for r in rows.all()}

    async def claim_due(self, *, now: datetime, stale: datetime, limit: int) -> list[Any]:
        """Move up to ``limit`` due callbacks to ``sending`` (``FOR UPDATE SKIP LOCKED`` on
        PostgreSQL: replicas share them); the rows as claimed."""
        due = sa.or_(
            sa.and_(
                C.c.status == "pending",
                sa.or_(C.c.next_attempt_at.is_(None), C.c.next_attempt_at <= now),
            ),
            sa.and_(C.c.status == "sending", C.c.claimed_at < stale),
        )
        pick = sa.select(C.c.id).where(due).order_by(C.c.created_at).limit(limit)
        if self.db.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(C)
            .where(C.c.id.in_(pick.scalar_subquery()), due)
            .values(status="sending", claimed_at=now, updated_at=now, attempts=C.c.attempts + 1)
            .returning(*C.c)
        )
        return list((await self.db.execute(stmt)).all())

    async def update(self, callback_id: uuid.UUID, **values: Any) -> None:
        await self.db.execute(sa.update(C).where(C.c.id == callback_id).values(**values))

    async def services(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, NotifyService]:
        found = await self.db.execute(
            sa.select(NotifyService).where(col(NotifyService.id).in_(set(ids)))
        )
        return {s.id: s for s in found.scalars().all()}

    async def delete_older_than(self, before: datetime, *, limit: int) -> int:
        ids = sa.select(C.c.id).where(C.c.created_at < before).limit(limit)
        if self.db.get_bind().dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        done = await self.db.execute(sa.delete(C).where(C.c.id.in_(ids.scalar_subquery())))
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def containing(self, text: str) -> list[tuple[uuid.UUID, str, str]]:
        """``(id, kind, payload)`` of the callbacks whose payload contains ``text``."""
        found = await self.db.execute(
            sa.select(C.c.id, C.c.kind, C.c.payload).where(C.c.payload.contains(text))
        )
        return [(uuid.UUID(str(r[0])), r[1], r[2]) for r in found.all()]

    async def delete(self, callback_id: uuid.UUID) -> None:
        await self.db.execute(sa.delete(C).where(C.c.id == callback_id))
