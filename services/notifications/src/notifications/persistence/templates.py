"""The ``template`` and ``template_version`` tables' queries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.persistence.tables import Template, TemplateVersion
from servicekit.db import Database
from servicekit.repository import Repository


class TemplateRepository(Repository):
    async def get(self, template_id: uuid.UUID) -> Template | None:
        return await self.db.get(Template, template_id)

    async def get_version(self, template_id: uuid.UUID, version: int) -> TemplateVersion | None:
        return await self.db.get(TemplateVersion, (template_id, version))

    async def current_version(self, template_id: uuid.UUID) -> Any | None:
        """``(version, archived, service_id)`` of the template (one small query), or None."""
        return (
            await self.db.execute(
                sa.select(
                    col(Template.version), col(Template.archived), col(Template.service_id)
                ).where(col(Template.id) == template_id)
            )
        ).one_or_none()

    async def insert(self, template: Template) -> None:
        """A new template, flushed."""
        self.db.add(template)
        await self.db.flush()

    async def add_version(self, template: Template, version: TemplateVersion) -> None:
        """``version`` and the template it is now the current version of."""
        self.db.add(version)
        self.db.add(template)
        await self.db.flush()

    async def list_current(
        self, *, service_id: uuid.UUID | None = None, template_type: str | None = None
    ) -> list[tuple[Template, TemplateVersion]]:
        """Unarchived templates at their current version, oldest first."""
        query = (
            sa.select(Template, TemplateVersion)
            .join(
                TemplateVersion,
                sa.and_(
                    col(TemplateVersion.template_id) == col(Template.id),
                    col(TemplateVersion.version) == col(Template.version),
                ),
            )
            .where(sa.not_(col(Template.archived)))
            .order_by(col(Template.created_at))
        )
        if service_id is not None:
            query = query.where(col(Template.service_id) == service_id)
        if template_type:
            query = query.where(col(Template.template_type) == template_type)
        return [(t, v) for t, v in (await self.db.execute(query)).all()]

    def detach(self, *rows: Any) -> None:
        """Rows kept beyond this session (a cache shared by requests): a rollback must not
        expire them."""
        for row in rows:
            self.db.expunge(row)


@asynccontextmanager
async def templates_beside(
    database: Database, db: AsyncSession
) -> AsyncIterator[TemplateRepository]:
    """Templates to read while ``db`` (a write transaction) inserts: on SQLite through a read
    session, outside the write transaction (whose lock is then held only to insert and
    commit); on PostgreSQL through ``db`` itself (one pooled connection, not two)."""
    if database.is_sqlite:
        async with database.read_session() as reader:
            yield TemplateRepository(reader)
    else:
        yield TemplateRepository(db)
