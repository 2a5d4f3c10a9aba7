"""The ``webhook_subscription`` and ``webhook_delivery`` tables' queries, with the delivery
worker's claim (``UPDATE .. RETURNING``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from notifications.persistence.tables import WebhookDelivery, WebhookSubscription
from servicekit.repository import Repository

D = WebhookDelivery.__table__  # type: ignore[attr-defined]


class WebhookRepository(Repository):
    # -- subscriptions -------------------------------------------------------------------
    async def insert(self, sub: WebhookSubscription) -> None:
        """A new subscription, flushed (its id is known after)."""
        self.db.add(sub)
        await self.db.flush()

    async def save(self, sub: WebhookSubscription) -> None:
        """A changed subscription, flushed."""
        self.db.add(sub)
        await self.db.flush()

    async def get(self, subscription_id: uuid.UUID) -> WebhookSubscription | None:
        return await self.db.get(WebhookSubscription, subscription_id)

    async def subscriptions(self, owner: str | None = None) -> list[WebhookSubscription]:
        """Oldest first; ``owner``: only its own (None: all)."""
        query = sa.select(WebhookSubscription).order_by(col(WebhookSubscription.created_at))
        if owner is not None:
            query = query.where(col(WebhookSubscription.owner) == owner)
        return list((await self.db.execute(query)).scalars())

    async def active(self) -> list[WebhookSubscription]:
        return list(
            (
                await self.db.execute(
                    sa.select(WebhookSubscription).where(
                        col(WebhookSubscription.status) == "active"
                    )
                )
            )
            .scalars()
            .all()
        )

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, WebhookSubscription]:
        return {
            s.id: s
            for s in (
                await self.db.execute(
                    sa.select(WebhookSubscription).where(col(WebhookSubscription.id).in_(set(ids)))
                )
            ).scalars()
        }

    async def delete(self, sub: WebhookSubscription) -> None:
        """The subscription and its delivery log."""
        await self.db.execute(
            sa.delete(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == sub.id)
        )
        await self.db.delete(sub)

    # -- deliveries ----------------------------------------------------------------------
    def add_delivery(self, delivery: WebhookDelivery) -> None:
        self.db.add(delivery)

    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        return await self.db.get(WebhookDelivery, delivery_id)

    async def save_delivery(self, delivery: WebhookDelivery) -> None:
        self.db.add(delivery)
        await self.db.flush()

    async def deliveries(self, subscription_id: uuid.UUID, *, limit: int) -> list[WebhookDelivery]:
        """Newest first."""
        return list(
            (
                await self.db.execute(
                    sa.select(WebhookDelivery)
                    .where(col(WebhookDelivery.subscription_id) == subscription_id)
                    .order_by(col(WebhookDelivery.created_at).desc())
                    .limit(limit)
                )
            ).scalars()
        )

    async def claim_due(self, *, now: datetime, stale: datetime, limit: int) -> list[Any]:
        """Move up to ``limit`` due deliveries (pending and due, or left in ``sending``
        before ``stale``) to ``sending``, one statement; ``(id, subscription_id, payload,
        attempts)`` of each. On PostgreSQL ``FOR UPDATE SKIP LOCKED``: replicas share."""
        due = sa.or_(
            sa.and_(
                D.c.status == "pending",
                sa.or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= now),
            ),
            sa.and_(D.c.status == "sending", D.c.claimed_at < stale),
        )
        pick = sa.select(D.c.id).where(due).order_by(D.c.created_at).limit(limit)
        if self.db.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(D)
            .where(D.c.id.in_(pick.scalar_subquery()), due)
            .values(status="sending", claimed_at=now, updated_at=now, attempts=D.c.attempts + 1)
            .returning(D.c.id, D.c.subscription_id, D.c.payload, D.c.attempts)
        )
        return list((await self.db.execute(stmt)).all())

    async def update_delivery(self, delivery_id: str, **values: Any) -> None:
        await self.db.execute(sa.update(D).where(D.c.id == delivery_id).values(**values))

    async def payloads_containing(self, text: str) -> list[tuple[str, str]]:
        """``(id, payload)`` of the deliveries whose payload contains ``text``."""
        return [
            (r[0], r[1])
            for r in (
                await self.db.execute(
                    sa.select(D.c.id, D.c.payload).where(D.c.payload.contains(text))
                )
            ).all()
        ]
