"""The ``notification`` table's queries: inserts (the Notify accept path's Core ``INSERT``
and its ``INSERT .. SELECT`` guarded by the template's version), the delivery workers'
claim (``UPDATE .. RETURNING``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and outcomes,
reads for the Notify API, erasure and the retention purge."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn
from sqlmodel import col

from notifications.domain.notification import Channel, Status
from notifications.domain.notify import KeyType
from notifications.persistence.tables import Notification, Template
from servicekit.db import Database, mark_work
from servicekit.messaging.tables import OutboxMessage
from servicekit.repository import Repository
from servicekit.types import UtcDateTime

T = Notification.__table__  # type: ignore[attr-defined]

#: The columns the Notify accept path sets (:meth:`NotificationRepository.insert_if_current`).
INSERT_COLUMNS = (
    "id",
    "channel",
    "recipient",
    "subject",
    "body",
    "html_body",
    "text_body",
    "status",
    "reference",
    "service_id",
    "api_key_id",
    "key_type",
    "template_id",
    "template_version",
    "simulated",
    "unsubscribe_url",
    "scheduled_for",
    "next_attempt_at",
    "sender",
    "attempts",
    "created_at",
    "updated_at",
)


def channel_work(channel: Channel | str) -> str:
    """The work name a commit marks for ``channel``'s delivery worker (``notification.sms``):
    a commit that made only emails due does not wake the SMS worker for an empty claim
    transaction, nor the other way round."""
    return f"{Notification.__tablename__}.{Channel(channel).value}"


def _mark_channels(db: Session, _flush_context: Any, _instances: Any) -> None:
    """ORM notifications added or changed: their channel's worker has work."""
    for obj in (*db.new, *db.dirty):
        if isinstance(obj, Notification):
            mark_work(db, channel_work(obj.channel))


def watch_channels(database: Database) -> None:
    """Make every flush of ORM notifications mark their channel's work (once per database)."""
    session_class = database.sessionmaker.kw.get("sync_session_class", Session)
    if not event.contains(session_class, "before_flush", _mark_channels):
        event.listen(session_class, "before_flush", _mark_channels)


@functools.cache
def _insert_if_current(dialect: str) -> sa.Insert:
    """``INSERT INTO notification (...) SELECT <the values> FROM template WHERE <the
    template is at the version rendered, not archived, the caller's>``: one round trip for
    the check and the insert. PostgreSQL needs each value's type (a cast; strings without
    their length, so an over-long value is refused as by a plain INSERT, not cut)."""
    template = Template.__table__  # type: ignore[attr-defined]

    def value(name: str) -> Any:
        column_type = T.c[name].type
        param = sa.bindparam(name, type_=column_type)
        if dialect != "postgresql":
            return param
        return sa.cast(param, sa.String() if isinstance(column_type, sa.String) else column_type)

    pick = sa.select(*(value(name).label(name) for name in INSERT_COLUMNS)).where(
        template.c.id == sa.bindparam("current_template_id"),
        template.c.version == sa.bindparam("current_template_version"),
        template.c.service_id == sa.bindparam("current_service_id"),
        template.c.archived.is_(False),
    )
    return sa.insert(T).from_select(list(INSERT_COLUMNS), pick)


#: The outbox columns :func:`_insert_with_event_if_current` sets (``record_event``'s row).
OUTBOX_COLUMNS = (
    "event_id",
    "event_type",
    "topic",
    "message_key",
    "envelope",
    "payload",
    "created_at",
    "published_at",
    "attempts",
    "last_error",
)


@functools.cache
def _insert_with_event_if_current() -> sa.Insert:
    """PostgreSQL only: :func:`_insert_if_current` and the row's outbox event in ONE
    statement (``WITH inserted AS (INSERT .. RETURNING id) INSERT INTO servicekit_outbox ..
    SELECT .. FROM inserted``). One statement is one transaction: run in autocommit mode it
    is BEGIN, both INSERTs and COMMIT in a single round trip, and the event is written if
    and only if the notification is (no row when the template guess was wrong)."""
    outbox = OutboxMessage.__table__  # type: ignore[attr-defined]
    inserted = _insert_if_current("postgresql").returning(T.c.id).cte("inserted")

    def value(name: str) -> Any:
        column_type = outbox.c[name].type
        param = sa.bindparam(f"outbox_{name}", type_=column_type)
        return sa.cast(param, sa.String() if isinstance(column_type, sa.String) else column_type)

    pick = sa.select(*(value(name).label(name) for name in OUTBOX_COLUMNS)).select_from(inserted)
    return sa.insert(outbox).from_select(list(OUTBOX_COLUMNS), pick)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: the parameters' names in ``$1, $2, ...`` order
    names: tuple[str, ...]
    #: SQLAlchemy's conversion of a value for the driver, by parameter (the column types')
    processors: dict[str, Callable[[Any], Any]]


_COMPILED: dict[tuple[str, str, str], _Compiled] = {}


def _compiled(dialect: Dialect) -> _Compiled:
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    found = _COMPILED.get(key)
    if found is None:
        compiled = _insert_with_event_if_current().compile(dialect=dialect)
        assert compiled.positiontup is not None
        processors: dict[str, Callable[[Any], Any]] = {
            name: processor
            for name, processor in compiled._bind_processors.items()
            if callable(processor)  # (a sequence only for tuple-valued parameters: none)
        }
        found = _COMPILED[key] = _Compiled(str(compiled), tuple(compiled.positiontup), processors)
    return found


async def insert_with_event_if_current(
    database: Database,
    row: Mapping[str, Any],
    event: Mapping[str, Any],
    *,
    template_id: uuid.UUID,
    template_version: int,
    service_id: uuid.UUID,
) -> bool:
    """PostgreSQL (asyncpg): :meth:`NotificationRepository.insert_if_current` and ``event``
    (an outbox row as ``servicekit.messaging.outbox.record_event`` records it) in one
    statement (:func:`_insert_with_event_if_current`), sent on a pooled connection outside
    any transaction: the statement is its own transaction, one round trip. Whether both
    were inserted (neither was, else: the template guess was wrong, or PostgreSQL refused
    a value); then the relay and the channel's worker are woken as by a commit
    (``Database.committed_outside_session``). No SQLAlchemy statement span is made for it
    (the request's span covers it).

    No ORM session and no SQLAlchemy ``Connection``: measured on this path, they cost
    ~0.6 ms of CPU a request, the statement itself ~0.25 ms. The SQL and the values'
    conversions are SQLAlchemy's own, compiled once for the engine's dialect."""
    compiled = _compiled(database.engine.dialect)
    params: dict[str, Any] = {
        **row,
        "current_template_id": template_id,
        "current_template_version": template_version,
        "current_service_id": service_id,
    }
    params.update((f"outbox_{name}", event[name]) for name in OUTBOX_COLUMNS)
    processors = compiled.processors
    args = [
        processors[name](params[name]) if name in processors else params[name]
        for name in compiled.names
    ]
    connection = await database.engine.raw_connection()
    try:
        driver = connection.driver_connection
        assert driver is not None
        status = await driver.execute(compiled.sql, *args)
    except asyncpg.PostgresError:
        # refused by PostgreSQL (e.g. a NUL in a value): nothing was written, and the
        # connection is as it was (no transaction block); the caller's unit-of-work path
        # runs the same insert and reports the error as every other write does
        await greenlet_spawn(connection.close)
        return False
    except BaseException:
        # a statement broken off may leave it mid-protocol: discarded, not reused (in a
        # greenlet, as everything of the pool that may close a connection must be)
        await greenlet_spawn(connection.invalidate)
        raise
    # back to the pool (no transaction was begun: nothing to reset; an overflow
    # connection is closed, which the asyncpg adapter does in a greenlet only)
    await greenlet_spawn(connection.close)
    if status != "INSERT 0 1":
        return False
    database.committed_outside_session(channel_work(row["channel"]), OutboxMessage.__tablename__)
    return True


def _is_postgres(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "postgresql"


class NotificationRepository(Repository):
    # -- writing -------------------------------------------------------------------------
    def add(self, notification: Notification) -> None:
        """An ORM notification (its channel's worker is woken by the commit)."""
        self.db.add(notification)

    async def insert(self, row: Mapping[str, Any]) -> None:
        """A Core ``INSERT`` of ``row`` (no ORM object); wakes its channel's worker only."""
        await self.db.execute(sa.insert(T), dict(row))
        mark_work(self.db, channel_work(row["channel"]))

    async def insert_if_current(
        self,
        row: Mapping[str, Any],
        *,
        template_id: uuid.UUID,
        template_version: int,
        service_id: uuid.UUID,
    ) -> bool:
        """Insert ``row`` only if the template is still at ``template_version``, unarchived,
        of ``service_id`` (one statement); whether it was inserted."""
        inserted = await self.db.execute(
            _insert_if_current(self.db.get_bind().dialect.name),
            {
                **row,
                "current_template_id": template_id,
                "current_template_version": template_version,
                "current_service_id": service_id,
            },
        )
        if inserted.rowcount != 1:  # type: ignore[attr-defined]
            return False
        mark_work(self.db, channel_work(row["channel"]))
        return True

    # -- the delivery workers ------------------------------------------------------------
    async def claim_due(
        self, channel: Channel, *, now: datetime, stale: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Move up to ``limit`` due notifications of ``channel`` (created and due, or left
        in ``sending`` before ``stale``) to ``sending``, one statement; the rows as claimed.
        On PostgreSQL ``FOR UPDATE SKIP LOCKED``: several replicas share the work."""
        due = sa.or_(
            sa.and_(
                T.c.status == Status.CREATED.value,
                sa.or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now),
            ),
            sa.and_(T.c.status == Status.SENDING.value, T.c.claimed_at < stale),
        )
        pick = (
            sa.select(T.c.id)
            .where(T.c.channel == channel.value, due)
            .order_by(T.c.created_at)
            .limit(limit)
        )
        if _is_postgres(self.db):
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(T)
            .where(T.c.id.in_(pick.scalar_subquery()), due)
            .values(
                status=Status.SENDING.value,
                claimed_at=now,
                updated_at=now,
                attempts=T.c.attempts + 1,
            )
            .returning(*T.c)
        )
        return [dict(r._mapping) for r in (await self.db.execute(stmt)).all()]

    async def mark_delivered(self, ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self.db.execute(
            sa.update(T)
            .where(T.c.id.in_(ids))
            .values(status=Status.DELIVERED.value, sent_at=now, completed_at=now, updated_at=now)
        )

    async def update(self, notification_id: uuid.UUID, **values: Any) -> None:
        await self.db.execute(sa.update(T).where(T.c.id == notification_id).values(**values))

    # -- the Notify API ------------------------------------------------------------------
    async def get_of_service(
        self, notification_id: uuid.UUID, service_id: uuid.UUID
    ) -> Notification | None:
        found: Notification | None = (
            await self.db.execute(
                sa.select(Notification).where(
                    col(Notification.id) == notification_id,
                    col(Notification.service_id) == service_id,
                )
            )
        ).scalar_one_or_none()
        return found

    async def list_of_service(
        self,
        *,
        service_id: uuid.UUID,
        test_key: bool,
        channels: Sequence[str],
        statuses: Sequence[str],
        reference: str | None,
        older_than: uuid.UUID | None,
        limit: int,
    ) -> list[Notification]:
        """Newest first. Test keys see what test keys sent; live and team keys see the
        rest (as Notify). ``older_than``: after that notification (none if it is not seen)."""
        test = col(Notification.key_type) == KeyType.TEST.value
        visible = sa.and_(
            col(Notification.service_id) == service_id, test if test_key else sa.not_(test)
        )
        query = sa.select(Notification).where(visible)
        if channels:
            query = query.where(col(Notification.channel).in_(channels))
        if statuses:
            query = query.where(col(Notification.status).in_(statuses))
        if reference is not None:
            query = query.where(col(Notification.reference) == reference)
        if older_than is not None:
            anchor = (
                await self.db.execute(
                    sa.select(col(Notification.created_at)).where(
                        col(Notification.id) == older_than, visible
                    )
                )
            ).scalar_one_or_none()
            if anchor is None:
                return []
            query = query.where(
                sa.tuple_(col(Notification.created_at), col(Notification.id))
                < sa.tuple_(sa.literal(anchor, UtcDateTime()), sa.literal(older_than, sa.Uuid()))
            )
        query = query.order_by(
            col(Notification.created_at).desc(), col(Notification.id).desc()
        ).limit(limit)
        return list((await self.db.execute(query)).scalars().all())

    # -- privacy -------------------------------------------------------------------------
    @staticmethod
    def _theirs(citizen_id: str, addresses: Sequence[str]) -> Any:
        """A citizen's messages: by ``citizen_id``, and /v2 messages (no citizen) by address."""
        if not addresses:
            return T.c.citizen_id == citizen_id
        return sa.or_(
            T.c.citizen_id == citizen_id,
            sa.and_(T.c.citizen_id.is_(None), T.c.recipient.in_(addresses)),
        )

    async def ids_of_citizen(self, citizen_id: str, addresses: Sequence[str]) -> list[uuid.UUID]:
        """The ids of the citizen's messages (as :meth:`redact_citizen` finds them)."""
        found = await self.db.execute(sa.select(T.c.id).where(self._theirs(citizen_id, addresses)))
        return [uuid.UUID(str(i)) for i in found.scalars().all()]

    async def unsent_of_citizen(
        self, citizen_id: str, addresses: Sequence[str]
    ) -> list[dict[str, Any]]:
        return [
            dict(r._mapping)
            for r in (
                await self.db.execute(
                    sa.select(T).where(
                        self._theirs(citizen_id, addresses), T.c.status == Status.CREATED.value
                    )
                )
            ).all()
        ]

    async def fail(self, ids: Sequence[uuid.UUID], *, now: datetime, error: str) -> None:
        await self.db.execute(
            sa.update(T)
            .where(T.c.id.in_(ids))
            .values(
                status=Status.TECHNICAL_FAILURE.value,
                completed_at=now,
                updated_at=now,
                last_error=error,
            )
        )

    async def redact_citizen(
        self, citizen_id: str, addresses: Sequence[str], *, blank: Mapping[str, Any], now: datetime
    ) -> int:
        """Blank the citizen's messages (``blank``: the columns and their blank values) and
        take the subject id out; how many."""
        done = await self.db.execute(
            sa.update(T)
            .where(self._theirs(citizen_id, addresses))
            .values(
                **blank,
                citizen_id=None,
                updated_at=now,
                redacted_at=sa.func.coalesce(T.c.redacted_at, now),
            )
        )
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def redact_expired(
        self,
        *,
        created_before: datetime,
        statuses: Sequence[str],
        blank: Mapping[str, Any],
        now: datetime,
        limit: int,
    ) -> int:
        """Blank up to ``limit`` unredacted messages created before ``created_before`` in
        one of ``statuses``; how many."""
        ids = (
            sa.select(T.c.id)
            .where(
                T.c.redacted_at.is_(None), T.c.created_at < created_before, T.c.status.in_(statuses)
            )
            .limit(limit)
        )
        if _is_postgres(self.db):  # replicas purging at once take different rows, no waits
            ids = ids.with_for_update(skip_locked=True)
        done = await self.db.execute(
            sa.update(T)
            .where(T.c.id.in_(ids.scalar_subquery()), T.c.redacted_at.is_(None))
            .values(**blank, redacted_at=now)
        )
        return int(done.rowcount)  # type: ignore[attr-defined]
