"""This service's outbox rows, for erasure (scrubbing a subject id from their payloads)."""

from __future__ import annotations

from sqlalchemy import select, update

from servicekit.messaging.tables import OutboxMessage
from servicekit.repository import Repository

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


class OutboxRepository(Repository):
    async def payloads_containing(self, text: str) -> list[tuple[int, str]]:
        """(row id, JSON payload) of the rows whose payload contains ``text``."""
        rows = await self.db.execute(
            select(OUTBOX.c.id, OUTBOX.c.payload).where(OUTBOX.c.payload.contains(text))
        )
        return [(row_id, payload) for row_id, payload in rows.all()]

    async def set_payload(self, row_id: int, payload: str) -> None:
        await self.db.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(payload=payload))
