"""The ``notify_received_text`` table's queries (inbound SMS)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from notifications.persistence.tables import NotifyReceivedText, NotifySmsSender
from servicekit.repository import Repository
from servicekit.types import UtcDateTime

R = NotifyReceivedText.__table__  # type: ignore[attr-defined]


class ReceivedTextRepository(Repository):
    async def insert(self, text: NotifyReceivedText) -> bool:
        """Store ``text``; ``False`` if the provider's reference was stored before."""
        try:
            async with self.db.begin_nested():
                self.db.add(text)
                await self.db.flush()
        except IntegrityError:
            return False
        return True

    async def service_of_number(
        self, number: str, same: Callable[[str, str], bool]
    ) -> uuid.UUID | None:
        """The Notify service one of whose SMS senders is ``number`` (``same`` compares)."""
        rows = (
            await self.db.execute(
                sa.select(col(NotifySmsSender.service_id), col(NotifySmsSender.sms_sender))
            )
        ).all()
        for service_id, sender in rows:
            if same(sender, number):
                return uuid.UUID(str(service_id))
        return None

    async def page(
        self, *, service_id: uuid.UUID, older_than: uuid.UUID | None, limit: int
    ) -> list[NotifyReceivedText]:
        """Newest first; ``older_than``: after that text (none if it is not the service's)."""
        query = sa.select(NotifyReceivedText).where(
            col(NotifyReceivedText.service_id) == service_id
        )
        if older_than is not None:
            anchor = (
                await self.db.execute(
                    sa.select(col(NotifyReceivedText.created_at)).where(
                        col(NotifyReceivedText.id) == older_than,
                        col(NotifyReceivedText.service_id) == service_id,
                    )
                )
            ).scalar_one_or_none()
            if anchor is None:
                return []
            query = query.where(
                sa.tuple_(col(NotifyReceivedText.created_at), col(NotifyReceivedText.id))
                < sa.tuple_(sa.literal(anchor, UtcDateTime()), sa.literal(older_than, sa.Uuid()))
            )
        query = query.order_by(
            col(NotifyReceivedText.created_at).desc(), col(NotifyReceivedText.id).desc()
        ).limit(limit)
        return list((await self.db.execute(query)).scalars().all())

    async def delete_older_than(self, before: datetime, *, limit: int) -> int:
        ids = sa.select(R.c.id).where(R.c.created_at < before).limit(limit)
        if self.db.get_bind().dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        done = await self.db.execute(sa.delete(R).where(R.c.id.in_(ids.scalar_subquery())))
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def delete_from(self, numbers: Sequence[str]) -> int:
        """Delete the texts sent from these numbers (E.164; erasure); how many."""
        if not numbers:
            return 0
        done = await self.db.execute(sa.delete(R).where(R.c.user_number.in_(list(numbers))))
        return int(done.rowcount)  # type: ignore[attr-defined]
