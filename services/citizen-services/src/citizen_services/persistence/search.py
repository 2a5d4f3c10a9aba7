"""The catalogue search's SQL: full text, filters, sorting, pages, on either database.

Full text runs in the database. PostgreSQL matches ``websearch_to_tsquery`` against the stored
``search_document`` column (migration 0006: name weighted A, keywords B, description C, GIN
index) and ranks with ``ts_rank`` on it. SQLite matches the FTS5 table
``catalogue_service_fts`` (each word a prefix, all words required).

Filters on the JSON columns: PostgreSQL tests ``groups::jsonb @> '["…"]'`` and
``lgsl_codes::jsonb @> '[…]'`` (GIN ``jsonb_path_ops`` indexes of migration 0006); SQLite,
and both databases for the channel, match the columns' JSON text, the ``json.dumps`` output
SQLAlchemy wrote (``"phone": "`` — a string, not null, is a channel offered).

:func:`catalogue_version` reads the counter every change of ``catalogue_service`` bumps
(migration 0006), so a caller can build an ETag, and answer 304, before searching.
Used through :class:`citizen_services.persistence.catalogue.CatalogueRepository`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from citizen_services.domain.search import SearchResult, SearchServices, Sort
from citizen_services.persistence.tables import CatalogueService

#: Migration 0006's stored, GIN-indexed tsvector of name, keywords and description.
PG_DOCUMENT = "catalogue_service.search_document"

_VERSION = sa.text("SELECT version FROM catalogue_state WHERE id = 1")


async def catalogue_version(db: AsyncSession) -> int:
    """The catalogue's change counter: any insert, update or delete of an entry moves it."""
    return int((await db.execute(_VERSION)).scalar_one())


def _like(fragment: str) -> str:
    return "%" + fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _json_text(column: Any) -> Any:
    return sa.cast(column, sa.Text)


def _jsonb(column: Any) -> Any:
    # The expression migration 0006's GIN indexes are built on.
    return sa.cast(column, JSONB)


def _filters(query: SearchServices, *, postgres: bool) -> list[Any]:
    conditions: list[Any] = []
    if query.group and postgres:
        conditions.append(
            _jsonb(CatalogueService.groups).op("@>")(sa.literal([query.group], JSONB))
        )
    elif query.group:
        conditions.append(
            _json_text(CatalogueService.groups).like(_like(json.dumps(query.group)), escape="\\")
        )
    if query.channel:
        # Most entries offer most channels, so no index would help; matching the JSON text
        # costs a fraction of what casting every candidate row to jsonb does (19 ms for
        # 2,800 rows).
        conditions.append(
            _json_text(CatalogueService.channels).like(
                _like(json.dumps(query.channel.value) + ': "'), escape="\\"
            )
        )
    if query.lgsl is not None and postgres:
        conditions.append(
            _jsonb(CatalogueService.lgsl_codes).op("@>")(sa.literal([query.lgsl], JSONB))
        )
    elif query.lgsl is not None:
        text = _json_text(CatalogueService.lgsl_codes)
        code = str(query.lgsl)
        conditions.append(
            sa.or_(
                *(
                    text.like(_like(p), escape="\\")
                    for p in (f"[{code}]", f"[{code},", f" {code},", f" {code}]")
                )
            )
        )
    return conditions


async def find_services(db: AsyncSession, query: SearchServices) -> SearchResult:
    """One page of matching entries, how many match in all and the catalogue version, in
    one round trip: the count and the version ride along the page as uncorrelated scalar
    subqueries (each run once)."""
    postgres = db.get_bind().dialect.name == "postgresql"
    conditions: list[Any] = [col(CatalogueService.status) == query.status.value]
    rank: Any = None
    index_only = False
    words = query.words()
    if words:
        if postgres:
            document: Any = sa.literal_column(PG_DOCUMENT)
            tsquery = sa.func.websearch_to_tsquery(
                sa.literal_column("'english'::regconfig"), " ".join(words)
            )
            conditions.append(document.op("@@")(tsquery))
            rank = sa.func.ts_rank(document, tsquery)
            # The planner prices ``@@`` at one cheap operator per row, so for a common word
            # (a quarter of the catalogue) it picks a sequential scan matching every row's
            # tsvector: 17 ms at 10,000 entries, against 2-4 ms reading the GIN index. For
            # this transaction only, make it use the index (reads are autocommit: the
            # search then gets a transaction of its own, see below).
            index_only = True
        else:
            match = " ".join('"' + w.replace('"', "") + '"*' for w in words)
            fts = sa.table("catalogue_service_fts", sa.column("rowid"), sa.column("rank"))
            matching = sa.select(fts.c.rowid).where(
                sa.text("catalogue_service_fts MATCH :m").bindparams(m=match)
            )
            conditions.append(sa.literal_column("catalogue_service.rowid").in_(matching))
    conditions += _filters(query, postgres=postgres)
    where = sa.and_(*conditions)
    order: list[Any]
    name = col(CatalogueService.name)
    if query.sort is Sort.RELEVANCE and words:
        # PostgreSQL ranks below; SQLite: bm25 rank is per FTS row, so name order is a
        # stable, readable fallback.
        order = [name]
    elif query.sort is Sort.NAME_DESC:
        order = [name.desc()]
    elif query.sort is Sort.UPDATED:
        order = [col(CatalogueService.updated_at), name]
    elif query.sort is Sort.UPDATED_DESC:
        order = [col(CatalogueService.updated_at).desc(), name]
    else:
        order = [name]
    total: Any = sa.select(sa.func.count()).select_from(CatalogueService).where(where)
    version: Any = (
        sa.select(sa.literal_column("version"))
        .select_from(sa.table("catalogue_state"))
        .where(sa.literal_column("id") == 1)
    )
    extra = (
        total.scalar_subquery().label("mk_total"),
        version.scalar_subquery().label("mk_catalogue_version"),
    )
    # Core rows, not ORM objects: a page is read and serialised, never changed, and
    # building ORM instances cost more than the query (columns read as attributes).
    entry = CatalogueService.__table__  # type: ignore[attr-defined]
    offset = (query.page - 1) * query.size
    key = col(CatalogueService.id)
    if rank is not None and query.sort is Sort.RELEVANCE:
        # Rank narrow rows (id, rank, name) and fetch only the page's entries: carrying
        # thousands of full rows through the sort to keep 20 cost more than the ranking.
        hits = (
            sa.select(key.label("id"), rank.label("rank"), name.label("name"))
            .where(where)
            .order_by(rank.desc(), name, key)
            .offset(offset)
            .limit(query.size)
            .subquery("hits")
        )
        page = (
            sa.select(entry, *extra)
            .join(hits, hits.c.id == key)
            .order_by(hits.c.rank.desc(), hits.c.name, hits.c.id)
        )
    else:
        page = (
            sa.select(entry, *extra)
            .where(where)
            .order_by(*order, key)
            .offset(offset)
            .limit(query.size)
        )
    async with _index_scans(db, index_only):
        rows = (await db.execute(page)).all()
        if rows:
            return SearchResult(
                items=list(rows),
                total=int(rows[0].mk_total),
                catalogue_version=int(rows[0].mk_catalogue_version),
            )
        # An empty page (no match, or past the end): the subqueries had no row to ride on.
        empty = (
            await db.execute(sa.select(total.scalar_subquery(), version.scalar_subquery()))
        ).one()
        return SearchResult(items=[], total=int(empty[0]), catalogue_version=int(empty[1]))


@contextlib.asynccontextmanager
async def _index_scans(db: AsyncSession, wanted: bool) -> AsyncIterator[None]:
    """PostgreSQL: no sequential scans for the block (``SET LOCAL``). A read session is in
    autocommit mode, where ``SET LOCAL`` would do nothing (each statement is its own
    transaction): there the block runs in a transaction of its own, rolled back after."""
    if not wanted:
        yield
        return
    conn = await db.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    own = driver is not None and not driver.is_in_transaction()
    if own:
        await conn.exec_driver_sql("BEGIN")
    try:
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        yield
    finally:
        if own:
            await conn.exec_driver_sql("ROLLBACK")
