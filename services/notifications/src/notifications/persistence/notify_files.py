"""The ``notify_file`` table's queries: files sent by email and their expiry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from notifications.persistence.tables import NotifyFile
from servicekit.repository import Repository

F = NotifyFile.__table__  # type: ignore[attr-defined]


class NotifyFileRepository(Repository):
    def add(self, file: NotifyFile) -> None:
        self.db.add(file)

    async def get(self, file_id: uuid.UUID) -> NotifyFile | None:
        found: NotifyFile | None = (
            await self.db.execute(sa.select(NotifyFile).where(col(NotifyFile.id) == file_id))
        ).scalar_one_or_none()
        return found

    async def delete_expired(self, *, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` files past their expiry; how many. On PostgreSQL the
        batch is picked ``FOR UPDATE SKIP LOCKED``: replicas purging at once take
        different rows."""
        ids = sa.select(F.c.id).where(F.c.expires_at < now).limit(limit)
        if self.db.get_bind().dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        done = await self.db.execute(sa.delete(F).where(F.c.id.in_(ids.scalar_subquery())))
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def delete_of_notifications(self, notification_ids: Sequence[uuid.UUID]) -> int:
        """Delete the files sent with these notifications (erasure); how many."""
        if not notification_ids:
            return 0
        done = await self.db.execute(
            sa.delete(F).where(F.c.notification_id.in_(list(notification_ids)))
        )
        return int(done.rowcount)  # type: ignore[attr-defined]
