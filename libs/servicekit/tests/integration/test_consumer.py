"""The consumer against real Kafka: inbox, retries, DLQ, relay double-publish."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from contracts import Envelope, header_map
from contracts.citizen_services import ServicePublished
from contracts.topics import CATALOGUE_SERVICE
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer, MessageContext, PermanentError
from servicekit.messaging.relay import OutboxRelay
from servicekit.testing import end_offsets, eventually, read_topic
from servicekit.uow import UnitOfWork

from ..conftest import effect_table

pytestmark = [pytest.mark.kafka]
TOPIC = CATALOGUE_SERVICE.name
DLQ = CATALOGUE_SERVICE.dlq
SOURCE = "urn:uk-gov-milton-keynes:test"


def event(tag: str, n: int) -> ServicePublished:
    return ServicePublished(
        service_id=uuid.uuid4(),
        service_code=f"{tag}-{n}",
        slug=tag,
        name=f"Service {n}",
        entry_version=1,
        occurred_at=datetime.now(UTC),
    )


def recording_handler(tag: str):  # type: ignore[no-untyped-def]
    async def handle(ev: ServicePublished, ctx: MessageContext) -> None:
        if ev.slug != tag:
            return  # another test's event on the shared topic
        await ctx.uow.db.execute(sa.insert(effect_table).values(event_id=ctx.envelope.id, tag=tag))

    return handle


async def effects(db: Database, tag: str) -> int:
    async with db.session() as s:
        return int(
            (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(effect_table)
                    .where(effect_table.c.tag == tag)
                )
            ).scalar_one()
        )


def make_consumer(db: Database, bootstrap: str, handler, **kw) -> EventConsumer:  # type: ignore[no-untyped-def]
    return EventConsumer(
        db,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        subscriptions={ServicePublished: [handler]},
        service_name="test",
        source=SOURCE,
        backoff_initial=0.05,
        backoff_max=0.2,
        **kw,
    )


Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


async def produce(bootstrap: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(TOPIC, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


def good_record(tag: str, n: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    ev = event(tag, n)
    env = Envelope(source=SOURCE, type=ev.event_type(), subject=ev.aggregate_id)
    return ev.aggregate_id.encode(), ev.to_json(), env.to_headers()


async def test_bad_records_go_to_dlq_and_good_ones_after_them_are_processed(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    dlq_start = await end_offsets(kafka_bootstrap, DLQ)
    key = uuid.uuid4().hex.encode()
    undecodable = (key, b"\xff not json " + tag.encode(), [("ce_id", b"\xff\xfe")])
    v9 = event(tag, 99)
    unknown_version = (
        key,
        v9.to_json(),
        Envelope(
            source=SOURCE, type=v9.event_type().replace(".v1", ".v9"), subject="x"
        ).to_headers(),
    )
    await produce(
        kafka_bootstrap, [undecodable, unknown_version, *[good_record(tag, i) for i in range(5)]]
    )
    consumer = make_consumer(db, kafka_bootstrap, recording_handler(tag))
    await consumer.start()
    try:
        await eventually(
            lambda: _eq(effects(db, tag), 5),
            timeout=30,
            message="good records after the bad ones were not processed",
        )
        # read while the consumer runs: the good records (other keys, other partitions)
        # can be done before the bad ones' partition has dead-lettered its second record
        dead = await read_topic(
            kafka_bootstrap,
            DLQ,
            start=dlq_start,
            count=2,
            timeout=30,  # a group join on a busy machine can take seconds
            predicate=lambda r: tag.encode() in (r.value or b""),
        )
    finally:
        await consumer.stop()
    assert len(dead) == 2
    reasons = sorted(header_map(r.headers)["dlq-reason"] for r in dead)
    assert reasons == ["undecodable", "unknown-type"]
    for r in dead:
        h = header_map(r.headers)
        assert h["dlq-original-topic"] == TOPIC
        assert h["dlq-error"]
        assert h["dlq-consumer-group"].startswith("test-")


async def test_transient_failures_are_retried_and_the_effect_happens_once(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    failures = iter([RuntimeError("db blip"), RuntimeError("db blip again")])
    inner = recording_handler(tag)

    async def flaky(ev: ServicePublished, ctx: MessageContext) -> None:
        if ev.slug == tag:
            err = next(failures, None)
            if err:
                raise err
        await inner(ev, ctx)

    await produce(kafka_bootstrap, [good_record(tag, 0)])
    consumer = make_consumer(db, kafka_bootstrap, flaky)
    await consumer.start()
    try:
        await eventually(lambda: _eq(effects(db, tag), 1), timeout=30)
        await asyncio.sleep(0.5)
        assert await effects(db, tag) == 1
    finally:
        await consumer.stop()


async def test_handler_that_keeps_failing_goes_to_dlq_after_max_attempts(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    dlq_start = await end_offsets(kafka_bootstrap, DLQ)
    calls = 0

    async def broken(ev: ServicePublished, ctx: MessageContext) -> None:
        nonlocal calls
        if ev.slug == tag:
            calls += 1
            raise RuntimeError("downstream is down for user someone@example.com")
        await recording_handler(tag)(ev, ctx)

    async def permanent(ev: ServicePublished, ctx: MessageContext) -> None:
        if ev.slug == tag:
            raise PermanentError("cannot ever work")

    await produce(kafka_bootstrap, [good_record(tag, 0)])
    consumer = make_consumer(db, kafka_bootstrap, broken, max_attempts=3)
    await consumer.start()
    try:
        dead = await read_topic(
            kafka_bootstrap,
            DLQ,
            start=dlq_start,
            count=1,
            timeout=30,
            predicate=lambda r: tag.encode() in (r.value or b""),
        )
    finally:
        await consumer.stop()
    assert calls == 3
    assert len(dead) == 1
    h = header_map(dead[0].headers)
    assert h["dlq-reason"] == "handler-failed" and h["dlq-attempts"] == "3"
    assert "someone@example.com" not in h["dlq-error"]  # personal data scrubbed
    assert await effects(db, tag) == 0

    dlq_start = await end_offsets(kafka_bootstrap, DLQ)
    consumer = make_consumer(db, kafka_bootstrap, permanent, max_attempts=5)
    await consumer.start()
    try:
        dead = await read_topic(
            kafka_bootstrap,
            DLQ,
            start=dlq_start,
            count=1,
            timeout=30,
            predicate=lambda r: tag.encode() in (r.value or b""),
        )
    finally:
        await consumer.stop()
    assert header_map(dead[0].headers)["dlq-reason"] == "permanent"


async def test_relay_crash_after_send_before_marking_still_gives_one_effect_each(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """Fault (c): the relay publishes a batch twice; the inbox keeps effects exactly-once."""
    start = await end_offsets(kafka_bootstrap, TOPIC)

    class CrashOnceRelay(OutboxRelay):
        crashed = False

        async def mark_published(self, ids: list[int]) -> None:
            if not self.crashed:
                self.crashed = True
                raise ConnectionError("simulated crash after send, before marking")
            await super().mark_published(ids)

    relay = CrashOnceRelay(
        db, bootstrap_servers=kafka_bootstrap, service_name="test", backoff_initial=0.05
    )
    consumer = make_consumer(db, kafka_bootstrap, recording_handler(tag))
    await relay.start()
    await consumer.start()
    try:
        async with UnitOfWork(db, source=SOURCE) as uow:
            for i in range(10):
                uow.publish(event(tag, i))
        on_topic = await read_topic(
            kafka_bootstrap,
            TOPIC,
            start=start,
            count=20,
            timeout=30,
            predicate=lambda r: tag.encode() in r.value,
        )
        assert len(on_topic) == 20  # the batch really went out twice
        assert relay.crashed
        await eventually(lambda: _eq(effects(db, tag), 10), timeout=30)
        await asyncio.sleep(1.0)  # let any duplicate be (not) processed
        assert await effects(db, tag) == 10
    finally:
        await consumer.stop()
        await relay.stop()


async def test_the_same_record_delivered_twice_has_one_effect(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    start = await end_offsets(kafka_bootstrap, TOPIC)
    await produce(kafka_bootstrap, [good_record(tag, 0)])
    [record] = await read_topic(
        kafka_bootstrap, TOPIC, start=start, count=1, predicate=lambda r: tag.encode() in r.value
    )
    consumer = make_consumer(db, kafka_bootstrap, recording_handler(tag))
    assert await consumer.process(record) == "handled"
    assert await consumer.process(record) == "duplicate"
    assert await effects(db, tag) == 1


async def test_an_idle_consumer_asks_rarely_yet_handles_a_new_event_at_once(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """An idle consumer's fetch waits seconds on the broker (few requests, little idle CPU),
    but a record arriving meanwhile answers that fetch at once: no added latency."""
    consumer = make_consumer(db, kafka_bootstrap, recording_handler(tag))
    await consumer.start()
    try:
        await produce(kafka_bootstrap, [good_record(tag, 0)])
        await eventually(lambda: _eq(effects(db, tag), 1), timeout=60)
        assert consumer._consumer is not None
        assert consumer._consumer._fetcher._fetch_max_wait_ms >= 2000
        await asyncio.sleep(1.5)  # idle: a long fetch is waiting on the broker
        t0 = asyncio.get_running_loop().time()
        await produce(kafka_bootstrap, [good_record(tag, 1)])
        await eventually(lambda: _eq(effects(db, tag), 2), timeout=30, interval=0.02)
        assert asyncio.get_running_loop().time() - t0 < 1.5
    finally:
        await consumer.stop()


async def _eq(coro, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await coro == expected


async def test_a_failure_inside_a_batch_keeps_order_and_counts_attempts(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """Records fetched together are handled in one transaction; when one handler fails,
    the records before it commit, it is retried on its own, and the rest follow in order."""
    key = uuid.uuid4().hex.encode()  # one key: one partition, one ordered batch
    records = []
    for i in range(6):
        ev = event(tag, i)
        env = Envelope(source=SOURCE, type=ev.event_type(), subject=ev.aggregate_id)
        records.append((key, ev.to_json(), env.to_headers()))
    await produce(kafka_bootstrap, records)
    calls: dict[str, int] = {}
    order: list[str] = []

    async def fails_once_on_third(ev: ServicePublished, ctx: MessageContext) -> None:
        if ev.slug != tag:
            return
        calls[ev.service_code] = calls.get(ev.service_code, 0) + 1
        if ev.service_code == f"{tag}-2" and calls[ev.service_code] == 1:
            raise RuntimeError("transient")
        order.append(ev.service_code)
        await recording_handler(tag)(ev, ctx)

    consumer = make_consumer(db, kafka_bootstrap, fails_once_on_third)
    await consumer.start()
    try:
        await eventually(lambda: _eq(effects(db, tag), 6), timeout=30)
    finally:
        await consumer.stop()
    assert calls[f"{tag}-2"] == 2
    # records 0 and 1 may have been handled twice inside rolled-back transactions, but each
    # has exactly one effect, and the committed order is the partition's order
    assert await effects(db, tag) == 6
    committed = [c for c in dict.fromkeys(order)]
    assert committed == [f"{tag}-{i}" for i in range(6)]


async def test_offsets_are_committed_in_the_background_and_flushed_on_stop(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """A slow offset commit does not hold the next record up (it is committed in the
    background, after its transaction); stopping commits what is processed."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = make_consumer(db, kafka_bootstrap, recording_handler(tag))
    await consumer.start()
    commits: list[dict[TopicPartition, int]] = []
    try:
        await eventually(lambda: _true(consumer.connected), timeout=30)
        kafka = consumer._consumer
        assert kafka is not None
        real_commit = kafka.commit

        async def slow_commit(offsets=None):  # type: ignore[no-untyped-def]
            await asyncio.sleep(5)
            await real_commit(offsets)
            commits.append(dict(offsets))

        kafka.commit = slow_commit  # type: ignore[method-assign]
        await produce(kafka_bootstrap, [good_record(tag, 0)])
        await eventually(lambda: _equals(effects(db, tag), 1), timeout=30)
        t0 = asyncio.get_running_loop().time()
        await produce(kafka_bootstrap, [good_record(tag, 1)])
        await eventually(lambda: _equals(effects(db, tag), 2), timeout=30, interval=0.02)
        # the first record's commit is still sleeping: an awaited one held this one up
        assert asyncio.get_running_loop().time() - t0 < 3.5
    finally:
        await consumer.stop()
    assert commits, "stop() did not commit the processed offsets"
    check = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=consumer.group_id, enable_auto_commit=False
    )
    await check.start()
    try:
        for tp, offset in commits[-1].items():
            assert await check.committed(tp) == offset
    finally:
        await check.stop()


async def _true(value: bool) -> bool:
    return value


async def _equals(awaitable, expected) -> bool:  # type: ignore[no-untyped-def]
    return await awaitable == expected


async def test_a_slow_partition_does_not_hold_another_partition_up(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """Each partition is processed by a task of its own while the loop fetches on: a record
    on another partition is handled while one partition's handler is still busy."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: the slow transaction holds the lock")
    slow_started = asyncio.Event()
    record = recording_handler(tag)

    async def handle(ev: ServicePublished, ctx: MessageContext) -> None:
        if ev.slug == tag and ev.service_code.endswith("-slow"):
            slow_started.set()
            await asyncio.sleep(5)
        await record(ev, ctx)

    consumer = make_consumer(db, kafka_bootstrap, handle)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        slow = event(tag, 0).model_copy(update={"service_code": f"{tag}-slow"})
        env = Envelope(source=SOURCE, type=slow.event_type(), subject=slow.aggregate_id)
        await producer.send_and_wait(
            TOPIC, value=slow.to_json(), key=b"a", partition=0, headers=env.to_headers()
        )
        await asyncio.wait_for(slow_started.wait(), timeout=60)
        t0 = asyncio.get_running_loop().time()
        key, value, headers = good_record(tag, 1)
        await producer.send_and_wait(TOPIC, value=value, key=key, partition=1, headers=headers)
        await eventually(lambda: _equals(effects(db, tag), 1), timeout=30, interval=0.02)
        assert asyncio.get_running_loop().time() - t0 < 4  # the slow one sleeps 5 s
        await eventually(lambda: _equals(effects(db, tag), 2), timeout=30)
    finally:
        await producer.stop()
        await consumer.stop()


async def test_a_handler_runs_in_the_records_trace_with_or_without_an_exporter(
    db: Database, kafka_bootstrap: str, tag: str
) -> None:
    """No span processor: no span is started per record, the record's own trace context
    (the producer's traceparent) is current in the handler, so its events and log lines
    carry the trace on. With one: a ``process`` span, child of the producer's, is current."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from servicekit.telemetry import RecordWhenExported

    sampler = RecordWhenExported()
    provider = TracerProvider(sampler=sampler)
    sampler.provider = provider
    trace_id, span_id = 0x1234 << 64 | 0xABCD, 0x5678
    start = await end_offsets(kafka_bootstrap, TOPIC)
    records: list[Record] = []
    for n in range(2):
        ev = event(tag, n)
        env = Envelope(
            source=SOURCE,
            type=ev.event_type(),
            subject=ev.aggregate_id,
            traceparent=f"00-{trace_id:032x}-{span_id:016x}-00",
        )
        records.append((ev.aggregate_id.encode(), ev.to_json(), env.to_headers()))
    await produce(kafka_bootstrap, records)
    first, second = await read_topic(
        kafka_bootstrap, TOPIC, start=start, count=2, predicate=lambda r: tag.encode() in r.value
    )
    seen: list[trace.SpanContext] = []

    async def handle(ev: ServicePublished, ctx: MessageContext) -> None:
        seen.append(trace.get_current_span().get_span_context())

    consumer = make_consumer(db, kafka_bootstrap, handle, tracer_provider=provider)
    assert await consumer.process(first) == "handled"
    assert (seen[0].trace_id, seen[0].span_id) == (trace_id, span_id)

    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    assert await consumer.process(second) == "handled"
    assert seen[1].trace_id == trace_id and seen[1].span_id != span_id
    [span] = exported.get_finished_spans()
    assert span.name == f"{TOPIC} process"
    assert span.parent is not None and span.parent.span_id == span_id
    assert span.context.span_id == seen[1].span_id
