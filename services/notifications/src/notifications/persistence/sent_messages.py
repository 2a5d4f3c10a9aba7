"""The staff listing of sent messages (``GET /api/v1/messages``): the ``notification``
table read newest first, filtered, a page at a time, with each message's template name.

Served by indexes (migration 0011): ``ix_notification_created`` (newest first, unfiltered
or by status and channel), ``ix_notification_reference`` and ``ix_notification_template``
(a reference or a template, newest first); a status alone can also use ``ix_notification_due``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from notifications.persistence.tables import Notification, TemplateVersion
from servicekit.repository import Repository

N = Notification.__table__  # type: ignore[attr-defined]
V = TemplateVersion.__table__  # type: ignore[attr-defined]

#: What the list shows of a message: no subject, no body.
SUMMARY_COLUMNS = (
    "id",
    "channel",
    "recipient",
    "status",
    "reference",
    "service_id",
    "key_type",
    "template_id",
    "template_version",
    "source_event_type",
    "simulated",
    "created_at",
    "updated_at",
    "sent_at",
    "completed_at",
    "redacted_at",
)


@dataclass(frozen=True)
class MessageFilter:
    reference: str | None = None
    statuses: Sequence[str] = ()
    channel: str | None = None
    template_id: uuid.UUID | None = None
    service_id: uuid.UUID | None = None


def _with_template_name(*columns: Any) -> sa.Select[Any]:
    """The columns with the template's name at the version sent (null for event-driven
    messages, which have no template row)."""
    return sa.select(*columns, V.c.name.label("template_name")).select_from(
        N.outerjoin(
            V, sa.and_(V.c.template_id == N.c.template_id, V.c.version == N.c.template_version)
        )
    )


def list_query(wanted: MessageFilter, *, offset: int, limit: int) -> sa.Select[Any]:
    """Up to ``limit`` messages after the first ``offset``, newest first (ties by id)."""
    query = _with_template_name(*(N.c[name] for name in SUMMARY_COLUMNS))
    if wanted.reference is not None:
        query = query.where(N.c.reference == wanted.reference)
    if wanted.statuses:
        query = query.where(N.c.status.in_(list(wanted.statuses)))
    if wanted.channel is not None:
        query = query.where(N.c.channel == wanted.channel)
    if wanted.template_id is not None:
        query = query.where(N.c.template_id == wanted.template_id)
    if wanted.service_id is not None:
        query = query.where(N.c.service_id == wanted.service_id)
    return query.order_by(N.c.created_at.desc(), N.c.id.desc()).offset(offset).limit(limit)


class SentMessageRepository(Repository):
    async def page(self, wanted: MessageFilter, *, offset: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` messages after the first ``offset``, newest first (ties by id)."""
        query = list_query(wanted, offset=offset, limit=limit)
        return [dict(r._mapping) for r in (await self.db.execute(query)).all()]

    async def one(self, message_id: uuid.UUID) -> dict[str, Any] | None:
        """Every column of the message, and its template's name."""
        row = (await self.db.execute(_with_template_name(N).where(N.c.id == message_id))).first()
        return dict(row._mapping) if row is not None else None
