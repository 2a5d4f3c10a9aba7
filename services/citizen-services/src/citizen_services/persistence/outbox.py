"""This service's rows of servicekit's outbox, for erasure (``application/erasure.py``):
published rows are kept a while for the relay, and none may keep an erased subject."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from servicekit.messaging.tables import OutboxMessage
from servicekit.repository import Repository

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


class OutboxRepository(Repository):
    async def payloads_naming(self, subject: str) -> list[tuple[int, str]]:
        """(row id, JSON payload) of each row whose payload contains ``subject`` as a JSON
        string."""
        rows = await self.db.execute(
            select(OUTBOX.c.id, OUTBOX.c.payload).where(
                OUTBOX.c.payload.contains(json.dumps(subject))
            )
        )
        return [(row_id, payload) for row_id, payload in rows.all()]

    async def set_payload(self, row_id: int, payload: str) -> None:
        await self.db.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(payload=payload))
