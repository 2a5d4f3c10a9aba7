"""The ``notify_service`` and ``notify_api_key`` tables' queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import col

from notifications.persistence.tables import NotifyApiKey, NotifyService
from servicekit.repository import Repository


class NotifyServiceRepository(Repository):
    # -- services ------------------------------------------------------------------------
    async def get(self, service_id: uuid.UUID) -> NotifyService | None:
        return await self.db.get(NotifyService, service_id)

    async def insert(self, service: NotifyService) -> None:
        """A new Notify service, flushed."""
        self.db.add(service)
        await self.db.flush()

    async def all(self) -> list[NotifyService]:
        return list(
            (
                await self.db.execute(
                    sa.select(NotifyService).order_by(
                        col(NotifyService.created_at), col(NotifyService.id)
                    )
                )
            ).scalars()
        )

    # -- API keys ------------------------------------------------------------------------
    async def keys(self, service_id: uuid.UUID) -> list[NotifyApiKey]:
        """The service's keys, revoked ones included (oldest first)."""
        return list(
            (
                await self.db.execute(
                    sa.select(NotifyApiKey)
                    .where(col(NotifyApiKey.service_id) == service_id)
                    .order_by(col(NotifyApiKey.created_at), col(NotifyApiKey.id))
                )
            ).scalars()
        )

    async def add_key(self, key: NotifyApiKey) -> None:
        self.db.add(key)
        await self.db.flush()

    async def get_key(self, key_id: uuid.UUID) -> NotifyApiKey | None:
        return await self.db.get(NotifyApiKey, key_id)

    async def find_live_key(
        self,
        service_id: uuid.UUID,
        *,
        key_type: str,
        name: str | None = None,
        secret: str | None = None,
    ) -> NotifyApiKey | None:
        """An unrevoked key of the service and type, by name and/or secret (the first)."""
        query = sa.select(NotifyApiKey).where(
            col(NotifyApiKey.service_id) == service_id,
            col(NotifyApiKey.key_type) == key_type,
            col(NotifyApiKey.revoked_at).is_(None),
        )
        if name is not None:
            query = query.where(col(NotifyApiKey.name) == name)
        if secret is not None:
            query = query.where(col(NotifyApiKey.secret) == secret)
        return (await self.db.execute(query)).scalars().first()

    async def revoke_key(self, key: NotifyApiKey, *, now: datetime, revoked_by: str | None) -> bool:
        """Revoke ``key`` unless it is revoked already (conditional: of two concurrent
        revocations, the first one's audit is kept); ``key`` is read again. Whether this
        call revoked it."""
        done = await self.db.execute(
            sa.update(NotifyApiKey)
            .where(col(NotifyApiKey.id) == key.id, col(NotifyApiKey.revoked_at).is_(None))
            .values(revoked_at=now, revoked_by=revoked_by)
            .execution_options(synchronize_session=False)
        )
        await self.db.refresh(key)
        return getattr(done, "rowcount", 1) == 1

    def detach(self, *rows: Any) -> None:
        """Rows kept beyond this session (a cache shared by requests)."""
        for row in rows:
            self.db.expunge(row)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when this repository's transaction commits (never if it
        rolls back)."""
        event.listen(self.db.sync_session, "after_commit", lambda _db: callback(), once=True)
