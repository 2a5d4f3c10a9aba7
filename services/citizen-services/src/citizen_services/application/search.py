"""Citizens' search over published entries: full text, filters, sorting, pages (a query: no
unit of work).

Full text runs in the database: PostgreSQL matches ``websearch_to_tsquery`` against the
expression the GIN index of migration 0003 is built on; SQLite matches the FTS5 table
``catalogue_service_fts`` (each word a prefix, all words required). Filters on the JSON
columns (group, channel, LGSL code) match the columns' JSON text, which both databases store
as the ``json.dumps`` output SQLAlchemy wrote.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.persistence.tables import CatalogueService

#: The same expression as migration 0003's index.
PG_DOCUMENT = ("to_tsvector('english'::regconfig, coalesce(catalogue_service.name, '') || ' ' "
               "|| coalesce(catalogue_service.description, '') || ' ' || "
               "coalesce(catalogue_service.keywords::text, ''))")
_WORD = re.compile(r"\w+", re.UNICODE)


class Sort(StrEnum):
    RELEVANCE = "relevance"
    NAME = "name"
    NAME_DESC = "-name"
    UPDATED = "updated_at"
    UPDATED_DESC = "-updated_at"


class Channel(StrEnum):
    ONLINE = "online_url"
    PHONE = "phone"
    VENUE = "venue"
    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True)
class SearchServices:
    q: str | None = None
    group: str | None = None
    channel: Channel | None = None
    lgsl: int | None = None
    sort: Sort = Sort.RELEVANCE
    page: int = 1
    size: int = 20


def _like(fragment: str) -> str:
    return "%" + fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _json_text(column: Any) -> Any:
    return sa.cast(column, sa.Text)


async def search_services(*, session: AsyncSession,
                          query: SearchServices) -> tuple[list[CatalogueService], int]:
    postgres = session.get_bind().dialect.name == "postgresql"
    conditions: list[Any] = [col(CatalogueService.status) == ServiceStatus.PUBLISHED.value]
    rank: Any = None
    words = _WORD.findall(query.q or "")
    if words:
        if postgres:
            document = sa.text(PG_DOCUMENT)
            tsquery = sa.func.websearch_to_tsquery(sa.literal_column("'english'::regconfig"),
                                                   " ".join(words))
            conditions.append(sa.literal_column(f"({PG_DOCUMENT})").op("@@")(tsquery))
            rank = sa.func.ts_rank(document, tsquery)
        else:
            match = " ".join('"' + w.replace('"', "") + '"*' for w in words)
            fts = sa.table("catalogue_service_fts", sa.column("rowid"), sa.column("rank"))
            matching = (sa.select(fts.c.rowid).where(sa.text("catalogue_service_fts MATCH :m")
                                                     .bindparams(m=match)))
            conditions.append(sa.literal_column("catalogue_service.rowid").in_(matching))
    if query.group:
        conditions.append(_json_text(CatalogueService.groups).like(
            _like(json.dumps(query.group)), escape="\\"))
    if query.channel:
        conditions.append(_json_text(CatalogueService.channels).like(
            _like(json.dumps(query.channel.value) + ": \""), escape="\\"))
    if query.lgsl is not None:
        text = _json_text(CatalogueService.lgsl_codes)
        code = str(query.lgsl)
        conditions.append(sa.or_(*(text.like(_like(p), escape="\\") for p in (
            f"[{code}]", f"[{code},", f" {code},", f" {code}]"))))

    where = sa.and_(*conditions)
    total = (await session.execute(
        sa.select(sa.func.count()).select_from(CatalogueService).where(where))).scalar_one()
    order: list[Any]
    name = col(CatalogueService.name)
    if query.sort is Sort.RELEVANCE and rank is not None:
        order = [rank.desc(), name]
    elif query.sort is Sort.RELEVANCE and words:
        # SQLite: bm25 rank is per FTS row; name order is a stable, readable fallback.
        order = [name]
    elif query.sort is Sort.NAME_DESC:
        order = [name.desc()]
    elif query.sort is Sort.UPDATED:
        order = [col(CatalogueService.updated_at), name]
    elif query.sort is Sort.UPDATED_DESC:
        order = [col(CatalogueService.updated_at).desc(), name]
    else:
        order = [name]
    rows = await session.execute(
        sa.select(CatalogueService).where(where).order_by(*order, col(CatalogueService.id))
        .offset((query.page - 1) * query.size).limit(query.size))
    return list(rows.scalars().all()), int(total)
