"""The ``notify_service`` and ``notify_api_key`` tables' queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import col

from notifications.persistence.tables import (
    NotifyApiKey,
    NotifyReplyTo,
    NotifyService,
    NotifySmsSender,
)
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

    # -- reply-to addresses and SMS senders -----------------------------------------------
    async def reply_tos(self, service_id: uuid.UUID) -> list[NotifyReplyTo]:
        return list(
            (
                await self.db.execute(
                    sa.select(NotifyReplyTo)
                    .where(col(NotifyReplyTo.service_id) == service_id)
                    .order_by(col(NotifyReplyTo.created_at), col(NotifyReplyTo.id))
                )
            ).scalars()
        )

    async def sms_senders(self, service_id: uuid.UUID) -> list[NotifySmsSender]:
        return list(
            (
                await self.db.execute(
                    sa.select(NotifySmsSender)
                    .where(col(NotifySmsSender.service_id) == service_id)
                    .order_by(col(NotifySmsSender.created_at), col(NotifySmsSender.id))
                )
            ).scalars()
        )

    async def sender_of(
        self, service_id: uuid.UUID, sender_id: uuid.UUID, *, email: bool
    ) -> str | None:
        """The Reply-To address (``email``) or SMS sender with that id, if the service has
        it."""
        table: Any = NotifyReplyTo if email else NotifySmsSender
        value = table.email_address if email else table.sms_sender
        found: str | None = (
            await self.db.execute(
                sa.select(value).where(table.id == sender_id, table.service_id == service_id)
            )
        ).scalar_one_or_none()
        return found

    async def add_sender(self, sender: NotifyReplyTo | NotifySmsSender) -> None:
        """A new reply-to address or SMS sender; if it is the default, the others of its
        service stop being it."""
        if sender.is_default:
            table: Any = type(sender)
            await self.db.execute(
                sa.update(table)
                .where(table.service_id == sender.service_id)
                .values(is_default=False)
                .execution_options(synchronize_session=False)
            )
        self.db.add(sender)
        await self.db.flush()

    def detach(self, *rows: Any) -> None:
        """Rows kept beyond this session (a cache shared by requests)."""
        for row in rows:
            self.db.expunge(row)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when this repository's transaction commits (never if it
        rolls back)."""
        event.listen(self.db.sync_session, "after_commit", lambda _db: callback(), once=True)
