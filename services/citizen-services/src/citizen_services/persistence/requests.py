"""The service requests' repository: every query over ``service_request`` and its updates.

Built from a unit of work (``RequestRepository(uow.db)``) for commands and the erasure
handler, or from a read session (``RequestRepository(db)``) for queries; ``application/``
holds the rules (who may see what, Open311's defaults) and calls it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlmodel import col

from citizen_services.domain.requests import NoteVisibility
from citizen_services.persistence.tables import (
    ServiceRequest,
    ServiceRequestMedia,
    ServiceRequestUpdate,
)
from servicekit.repository import Repository


class RequestRepository(Repository):
    # -- writes ---------------------------------------------------------------------------
    def add_update(self, update_: ServiceRequestUpdate) -> None:
        self.db.add(update_)

    async def get(
        self, request_id: uuid.UUID, *, for_update: bool = False
    ) -> ServiceRequest | None:
        return await self.db.get(ServiceRequest, request_id, with_for_update=for_update)

    async def of_citizen(self, citizen_id: str) -> list[ServiceRequest]:
        """The citizen's requests, locked for the transaction."""
        return list(
            (
                await self.db.execute(
                    select(ServiceRequest)
                    .where(col(ServiceRequest.citizen_id) == citizen_id)
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )

    async def clear_notes(self, request_ids: Sequence[uuid.UUID]) -> None:
        await self.db.execute(
            update(ServiceRequestUpdate)
            .where(col(ServiceRequestUpdate.request_id).in_(request_ids))
            .values(note=None)
        )

    async def forget_actor(self, actor: str) -> None:
        await self.db.execute(
            update(ServiceRequestUpdate)
            .where(col(ServiceRequestUpdate.actor) == actor)
            .values(actor=None)
        )

    # -- reads ----------------------------------------------------------------------------
    async def client_update(
        self, request_id: uuid.UUID, source: str, external_id: str
    ) -> ServiceRequestUpdate | None:
        """The update a client already posted under its own id ``external_id``, if any."""
        rows = await self.db.execute(
            select(ServiceRequestUpdate)
            .where(
                col(ServiceRequestUpdate.request_id) == request_id,
                col(ServiceRequestUpdate.source) == source,
                col(ServiceRequestUpdate.external_id) == external_id,
            )
            .order_by(col(ServiceRequestUpdate.id))
            .limit(1)
        )
        return rows.scalars().first()

    async def media(self, media_id: uuid.UUID) -> ServiceRequestMedia | None:
        return await self.db.get(ServiceRequestMedia, media_id)

    async def updates(self, request_id: uuid.UUID) -> list[ServiceRequestUpdate]:
        """The request's updates, oldest first."""
        rows = await self.db.execute(
            select(ServiceRequestUpdate)
            .where(col(ServiceRequestUpdate.request_id) == request_id)
            .order_by(col(ServiceRequestUpdate.id))
        )
        return list(rows.scalars().all())

    async def page(
        self,
        *,
        citizen_id: str | None,
        status: str | None,
        service_code: str | None,
        assigned_to: str | None,
        area: str | None = None,
        page: int,
        size: int,
    ) -> tuple[list[ServiceRequest], int]:
        """A page of requests, newest first, matching every filter given, and how many
        match in all."""
        conditions: list[Any] = []
        if citizen_id is not None:
            conditions.append(col(ServiceRequest.citizen_id) == citizen_id)
        if status:
            conditions.append(col(ServiceRequest.status) == status)
        if service_code:
            conditions.append(col(ServiceRequest.service_code) == service_code)
        if assigned_to:
            conditions.append(col(ServiceRequest.assigned_to) == assigned_to)
        if area:
            conditions.append(col(ServiceRequest.area) == area)
        total = (
            await self.db.execute(
                select(func.count()).select_from(ServiceRequest).where(*conditions)
            )
        ).scalar_one()
        rows = await self.db.execute(
            select(ServiceRequest)
            .where(*conditions)
            .order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id))
            .offset((page - 1) * size)
            .limit(size)
        )
        return list(rows.scalars().all()), int(total)

    async def public(
        self,
        *,
        ids: Sequence[uuid.UUID] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        service_codes: Sequence[str] = (),
        statuses: Sequence[str] | None = None,
        limit: int,
    ) -> list[ServiceRequest]:
        """Public requests, newest first: with ``ids``, those (and no other filter);
        otherwise created between ``start`` and ``end``, of these service codes and
        statuses (each filter only when given)."""
        statement = select(ServiceRequest).where(col(ServiceRequest.public).is_(True))
        if ids is not None:
            statement = statement.where(col(ServiceRequest.id).in_(ids))
        else:
            if start is not None:
                statement = statement.where(col(ServiceRequest.created_at) >= start)
            if end is not None:
                statement = statement.where(col(ServiceRequest.created_at) <= end)
            if service_codes:
                statement = statement.where(col(ServiceRequest.service_code).in_(service_codes))
            if statuses is not None:
                statement = statement.where(col(ServiceRequest.status).in_(statuses))
        rows = await self.db.execute(
            statement.order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id)).limit(
                limit
            )
        )
        return list(rows.scalars().all())

    async def public_notes(self, request_ids: Sequence[uuid.UUID]) -> list[ServiceRequestUpdate]:
        """The updates of these requests carrying a public note from staff (not an update
        an Open311 client posted), oldest first."""
        rows = await self.db.execute(
            select(ServiceRequestUpdate)
            .where(
                col(ServiceRequestUpdate.request_id).in_(request_ids),
                col(ServiceRequestUpdate.note).is_not(None),
                col(ServiceRequestUpdate.note_visibility) == NoteVisibility.PUBLIC.value,
                col(ServiceRequestUpdate.source).is_(None),
            )
            .order_by(col(ServiceRequestUpdate.id))
        )
        return list(rows.scalars().all())

    async def public_changes(
        self, *, start: datetime | None, end: datetime | None, limit: int
    ) -> list[ServiceRequestUpdate]:
        """Updates of public requests that changed the status or carry a public note (not
        submissions), between ``start`` and ``end`` (each when given), oldest first."""
        statement = (
            select(ServiceRequestUpdate)
            .join(ServiceRequest, col(ServiceRequest.id) == col(ServiceRequestUpdate.request_id))
            .where(
                col(ServiceRequest.public).is_(True),
                col(ServiceRequestUpdate.previous_status).is_not(None),
                or_(
                    col(ServiceRequestUpdate.status) != col(ServiceRequestUpdate.previous_status),
                    (col(ServiceRequestUpdate.note).is_not(None))
                    & (col(ServiceRequestUpdate.note_visibility) == NoteVisibility.PUBLIC.value),
                ),
            )
        )
        if start is not None:
            statement = statement.where(col(ServiceRequestUpdate.occurred_at) >= start)
        if end is not None:
            statement = statement.where(col(ServiceRequestUpdate.occurred_at) <= end)
        rows = await self.db.execute(
            statement.order_by(
                col(ServiceRequestUpdate.occurred_at), col(ServiceRequestUpdate.id)
            ).limit(limit)
        )
        return list(rows.scalars().all())
