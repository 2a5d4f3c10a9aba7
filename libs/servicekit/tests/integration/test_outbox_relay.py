"""The outbox relay against real Kafka, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from contracts import Envelope, header_map
from contracts.citizen_services import ServicePublished
from contracts.topics import CATALOGUE_SERVICE
from servicekit.db import Database
from servicekit.messaging.relay import OutboxRelay
from servicekit.messaging.tables import OutboxMessage
from servicekit.testing import end_offsets, eventually, read_topic
from servicekit.uow import UnitOfWork

pytestmark = [pytest.mark.kafka]
SOURCE = "urn:uk-gov-milton-keynes:test"


def published(service_id: uuid.UUID, tag: str, n: int) -> ServicePublished:
    return ServicePublished(
        service_id=service_id,
        service_code=f"{tag}-{n}",
        slug=tag,
        name=f"Service {n}",
        entry_version=n,
        occurred_at=datetime.now(UTC),
    )


async def write_events(db: Database, events: list[ServicePublished]) -> None:
    async with UnitOfWork(db, source=SOURCE) as uow:
        for event in events:
            uow.publish(event)


async def pending(db: Database) -> int:
    async with db.session() as s:
        return int(
            (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.published_at.is_(None))
                )
            ).scalar_one()
        )


async def test_relay_publishes_in_order_per_key_with_cloudevents_headers(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    start = await end_offsets(kafka_bootstrap, CATALOGUE_SERVICE.name)
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [published(a if i % 2 else b, tag, i) for i in range(20)]
    relay = OutboxRelay(db, bootstrap_servers=kafka_bootstrap, service_name="test")
    await relay.start()
    try:
        await write_events(db, events)  # the commit wakes the relay
        await eventually(lambda: _zero(pending(db)), timeout=20, message="outbox not drained")
    finally:
        await relay.stop()

    records = await read_topic(
        kafka_bootstrap,
        CATALOGUE_SERVICE.name,
        start=start,
        count=20,
        predicate=lambda r: tag.encode() in r.value,
    )
    assert len(records) == 20
    for key in (a, b):
        mine = [r for r in records if r.key == str(key).encode()]
        codes = [ServicePublished.from_json(r.value).entry_version for r in mine]
        assert codes == sorted(codes) and len(codes) == 10  # order kept per aggregate
        assert len({r.partition for r in mine}) == 1
    headers = header_map(records[0].headers)
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == ServicePublished.event_type()
    assert headers["ce_source"] == SOURCE
    assert headers["ce_subject"] == records[0].key.decode()
    assert headers["content-type"] == "application/json"
    assert headers["ce_dataschema"].endswith("ServicePublished.v1.json")
    envelope = Envelope.from_headers(records[0].headers)
    assert envelope.type == ServicePublished.event_type()


async def _zero(coro: object) -> bool:
    return await coro == 0  # type: ignore[misc]


async def test_relay_retries_while_kafka_is_unreachable_and_keeps_rows(
    db: Database, tag: str
) -> None:
    """Nothing is lost while the broker is away: rows stay pending, the relay keeps trying."""
    relay = OutboxRelay(
        db,
        bootstrap_servers="127.0.0.1:1",
        service_name="test",
        backoff_initial=0.05,
        backoff_max=0.1,
    )
    await relay.start()
    try:
        await write_events(db, [published(uuid.uuid4(), tag, i) for i in range(3)])
        await asyncio.sleep(1.0)
        assert await pending(db) == 3
        assert relay.kafka_ok is False
    finally:
        await relay.stop()


async def test_without_an_exporter_the_relay_sends_the_stored_trace_context(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """No span processor: the publish span would be dropped, so the relay skips it and the
    record carries the request's own traceparent (trace id and span id) as stored."""
    from opentelemetry import context, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from servicekit.telemetry import RecordWhenExported

    sampler = RecordWhenExported()
    provider = TracerProvider(sampler=sampler)
    sampler.provider = provider
    request_span = SpanContext(
        trace_id=0x1234 << 64 | 0xABCD, span_id=0x5678, is_remote=False, trace_flags=TraceFlags(0)
    )
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(request_span)))
    try:
        await write_events(db, [published(uuid.uuid4(), tag, 1)])
    finally:
        context.detach(token)
    start = await end_offsets(kafka_bootstrap, CATALOGUE_SERVICE.name)
    relay = OutboxRelay(
        db, bootstrap_servers=kafka_bootstrap, service_name="test", tracer_provider=provider
    )
    await relay.start()
    try:
        await eventually(lambda: _zero(pending(db)), timeout=20, message="outbox not drained")
    finally:
        await relay.stop()
    [record] = await read_topic(
        kafka_bootstrap,
        CATALOGUE_SERVICE.name,
        start=start,
        count=1,
        predicate=lambda r: tag.encode() in r.value,
    )
    traceparent = header_map(record.headers)["traceparent"]
    assert traceparent == f"00-{request_span.trace_id:032x}-{request_span.span_id:016x}-00"


async def test_a_pass_over_a_short_batch_takes_two_statements_and_no_transaction(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """Round trips are what a busy host makes slow: a pass over fewer rows than a batch
    reads them once (no second read to find nothing) and marks them with one UPDATE, on
    PostgreSQL without BEGIN / notify / COMMIT around it."""
    await write_events(db, [published(uuid.uuid4(), tag, n) for n in range(3)])
    statements: list[str] = []
    begins: list[bool] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0].upper())

    def began(conn) -> None:  # type: ignore[no-untyped-def]
        begins.append(getattr(conn.connection.dbapi_connection, "autocommit", None))

    engines = (db.engine.sync_engine, db.read_engine.sync_engine)
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", count)
        sa.event.listen(engine, "begin", began)
    relay = OutboxRelay(db, bootstrap_servers=kafka_bootstrap, service_name="test")
    try:
        assert await relay.publish_pending() >= 3
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", count)
            sa.event.remove(engine, "begin", began)
        await relay.stop()
    # (SQLite's write takes its lock with BEGIN IMMEDIATE)
    assert [s for s in statements if s != "BEGIN"] == ["SELECT", "UPDATE"]
    assert await pending(db) == 0
    if db.is_postgres:
        assert statements == ["SELECT", "UPDATE"]
        assert begins == [True, True]  # autocommit: no BEGIN / COMMIT round trips


async def test_marking_is_one_statement_text_whatever_the_batch_size(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """PostgreSQL: the rows a pass published are marked with the same statement text for
    any number of rows (one prepared statement; an IN list was a new one per size)."""
    updates: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    engines = (db.engine.sync_engine, db.read_engine.sync_engine)
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", count)
    relay = OutboxRelay(db, bootstrap_servers=kafka_bootstrap, service_name="test")
    try:
        for size in (2, 5):
            await write_events(db, [published(uuid.uuid4(), tag, n) for n in range(size)])
            assert await relay.publish_pending() >= size
            assert await pending(db) == 0
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", count)
        await relay.stop()
    assert len(updates) == 2
    if db.is_postgres:
        assert updates[0] == updates[1]


async def test_while_kafka_is_away_commits_do_not_wake_the_relay_before_its_backoff(
    db: Database, tag: str
) -> None:
    """The relay's backoff hook holds it off: a burst of commits during an outage is not a
    connection attempt per commit, and the backoff doubles up to ``backoff_max``."""
    attempts: list[float] = []

    class Counting(OutboxRelay):
        async def _ensure_producer(self):  # type: ignore[no-untyped-def]
            attempts.append(asyncio.get_running_loop().time())
            raise ConnectionError("Kafka is away")

    relay = Counting(
        db,
        bootstrap_servers="127.0.0.1:1",
        service_name="test",
        backoff_initial=0.4,
        backoff_max=0.8,
    )
    await write_events(db, [published(uuid.uuid4(), tag, 0)])
    await relay.start()
    try:
        await asyncio.sleep(0.1)
        assert len(attempts) == 1
        for i in range(1, 6):  # commits during the first backoff
            await write_events(db, [published(uuid.uuid4(), tag, i)])
        await asyncio.sleep(0.1)
        assert len(attempts) == 1
        await eventually(lambda: _at_least(attempts, 3), timeout=10)
        assert attempts[1] - attempts[0] >= 0.35 and attempts[2] - attempts[1] >= 0.75
        assert relay.kafka_ok is False and await pending(db) == 6
    finally:
        await relay.stop()


async def _at_least(items: list[float], n: int) -> bool:
    return len(items) >= n
