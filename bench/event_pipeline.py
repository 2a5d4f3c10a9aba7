"""Event pipeline benchmark (PostgreSQL + real Kafka).

Pipeline (two processes, as two services would be): a command's transaction writes the
event to the producer service's outbox → the relay publishes it → a consumer in another
service (its own database) claims the inbox row and commits its effect. Measured:

* throughput: N events written (in transactions of ``BATCH`` events, by several writers),
  from the first insert to the last effect committed;
* latency at a steady 200 events/s (one event per transaction): event creation → effect
  written in the consumer's transaction, p50 / p99.

Baseline, same run, same broker: raw aiokafka produce → consume of records of the same size
(no database), for throughput and for latency at 200/s. Goals: throughput >= 0.35x raw;
p99 at 200/s <= 2x raw's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import _report
from bench._infra import create_database, kafka, percentile, postgres
from contracts import Envelope
from contracts.citizen_services import ServicePublished
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer, MessageContext
from servicekit.messaging.relay import OutboxRelay
from servicekit.messaging.tables import InboxMessage, OutboxMessage
from servicekit.uow import UnitOfWork

N_THROUGHPUT = 10_000
BATCH = 50
WRITERS = 4
RATE = 200
STEADY_SECONDS = 10
GOAL_THROUGHPUT = 0.35  # x raw aiokafka's events/s, same run
GOAL_P99 = 2.0  # x raw aiokafka's p99 at RATE/s, same run
SOURCE = "urn:uk-gov-milton-keynes:bench"
RAW_TOPIC_PREFIX = "bench.raw."

effects_md = sa.MetaData()
effect = sa.Table(
    "bench_effect",
    effects_md,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("tag", sa.String(40), nullable=False, index=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
)


def make_event(tag: str, n: int) -> ServicePublished:
    return ServicePublished(
        service_id=uuid.uuid4(),
        service_code=f"{tag}-{n}",
        slug=tag,
        name=f"Benchmark service {n}",
        entry_version=1,
        occurred_at=datetime.now(UTC),
    )


async def _handler(ev: ServicePublished, ctx: MessageContext) -> None:
    latency = (datetime.now(UTC) - ev.occurred_at).total_seconds() * 1000
    await ctx.uow.db.execute(
        sa.insert(effect).values(event_id=ctx.envelope.id, tag=ev.slug, latency_ms=latency)
    )


async def _count(db: Database, tag: str) -> int:
    async with db.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(effect).where(effect.c.tag == tag)
                )
            ).scalar_one()
        )


async def _paced(total: int) -> AsyncIterator[int]:
    """``0 … total - 1``, each when it is due at ``RATE``/s from the first (an open loop:
    a late one is yielded at once, the later ones keep their times)."""
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield i


async def _wait_for(db: Database, tag: str, n: int, timeout: float = 300) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if await _count(db, tag) >= n:
            return time.perf_counter()
        await asyncio.sleep(0.02)
    raise TimeoutError(f"only {await _count(db, tag)} of {n} effects")


async def _drained(db: Database, timeout: float = 300) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        async with db.engine.connect() as conn:
            pending = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.published_at.is_(None))
                )
            ).scalar_one()  # type: ignore[union-attr]
        if pending == 0:
            return time.perf_counter()
        await asyncio.sleep(0.02)
    raise TimeoutError("outbox not drained")


async def _consume_until(bootstrap: str, consumer_url: str, stop: Any) -> None:
    db = Database(consumer_url)
    consumer = EventConsumer(
        db,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        subscriptions={ServicePublished: [_handler]},
        service_name="bench",
        source=SOURCE,
    )
    await consumer.start()
    try:
        # a multiprocessing.Event cannot be awaited: wait for it in a thread
        await asyncio.to_thread(stop.wait)
    finally:
        await consumer.stop()
        await db.dispose()


def consumer_process(bootstrap: str, consumer_url: str, stop: Any) -> None:
    """The consuming service runs in its own process, as it does when deployed."""
    asyncio.run(_consume_until(bootstrap, consumer_url, stop))


async def pipeline(bootstrap: str, producer_url: str, consumer_url: str) -> dict[str, float]:
    producer_db, consumer_db = Database(producer_url), Database(consumer_url)
    async with producer_db.engine.begin() as conn:
        await conn.run_sync(lambda c: OutboxMessage.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]
    async with consumer_db.engine.begin() as conn:
        await conn.run_sync(lambda c: InboxMessage.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]
        await conn.run_sync(effects_md.create_all)
    relay = OutboxRelay(producer_db, bootstrap_servers=bootstrap, service_name="bench")
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    consumer = ctx.Process(
        target=consumer_process, args=(bootstrap, consumer_url, stop), daemon=True
    )
    consumer.start()
    await relay.start()
    try:
        # warm-up: connections, group join
        tag = "warm" + uuid.uuid4().hex[:6]
        async with UnitOfWork(producer_db, source=SOURCE) as uow:
            uow.publish(make_event(tag, 0))
        await _wait_for(consumer_db, tag, 1, timeout=60)

        print("  pipeline: throughput …", flush=True)
        tag = "tput" + uuid.uuid4().hex[:6]
        per_writer = N_THROUGHPUT // WRITERS

        async def writer(w: int) -> None:
            for start in range(0, per_writer, BATCH):
                async with UnitOfWork(producer_db, source=SOURCE) as uow:
                    for i in range(start, min(start + BATCH, per_writer)):
                        uow.publish(make_event(tag, w * per_writer + i))

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        t_written = time.perf_counter()
        t_relayed = await _drained(producer_db)
        t_done = await _wait_for(consumer_db, tag, per_writer * WRITERS)
        print(
            f"    written {t_written - t0:.2f}s, relayed {t_relayed - t0:.2f}s, "
            f"consumed {t_done - t0:.2f}s",
            flush=True,
        )
        throughput = per_writer * WRITERS / (t_done - t0)
        write_rate = per_writer * WRITERS / (t_written - t0)

        print(f"  pipeline: latency at {RATE}/s …", flush=True)
        tag = "lat" + uuid.uuid4().hex[:6]
        total = RATE * STEADY_SECONDS
        async for i in _paced(total):
            async with UnitOfWork(producer_db, source=SOURCE) as uow:
                uow.publish(make_event(tag, i))
        await _wait_for(consumer_db, tag, total)
        async with consumer_db.engine.connect() as conn:
            latencies = [
                float(v)
                for v in (
                    await conn.execute(sa.select(effect.c.latency_ms).where(effect.c.tag == tag))
                ).scalars()
            ]
    finally:
        stop.set()
        await asyncio.to_thread(consumer.join, 30)
        if consumer.is_alive():
            consumer.kill()
        await relay.stop()
        await producer_db.dispose()
        await consumer_db.dispose()
    return {
        "throughput": throughput,
        "write_rate": write_rate,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


async def _until(check, what: str, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"benchmark gave up waiting for {what}")
        await asyncio.sleep(0.005)


async def raw_baseline(bootstrap: str) -> dict[str, float]:
    raw_topic = RAW_TOPIC_PREFIX + uuid.uuid4().hex[:8]  # fresh, so "earliest" is exact
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(raw_topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    print("  baseline: raw aiokafka produce → consume …", flush=True)
    sample = make_event("raw", 0)
    value = sample.to_json()
    headers = Envelope(source=SOURCE, type=sample.event_type(), subject="x").to_headers()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=2)
    consumer = AIOKafkaConsumer(
        raw_topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await producer.start()
    await consumer.start()
    received: list[tuple[bytes, float]] = []
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            now = time.perf_counter()
            for tp, records in batch.items():
                received.extend((r.key, now) for r in records)
                await consumer.commit({tp: records[-1].offset + 1})

    try:
        # wait for the assignment, then warm up
        deadline = time.perf_counter() + 60
        while not consumer.assignment() and time.perf_counter() < deadline:
            await consumer.getmany(timeout_ms=100)
        task = asyncio.create_task(consume())
        await producer.send_and_wait(raw_topic, value=value, key=b"warm", headers=headers)
        await _until(lambda: any(k == b"warm" for k, _ in received), "the warm-up record")
        received.clear()

        # throughput
        t0 = time.perf_counter()
        futures = [
            await producer.send(raw_topic, value=value, key=str(i).encode(), headers=headers)
            for i in range(N_THROUGHPUT)
        ]
        await asyncio.gather(*futures)
        await _until(lambda: len(received) >= N_THROUGHPUT, "the throughput records")
        throughput = N_THROUGHPUT / (received[N_THROUGHPUT - 1][1] - t0)
        received.clear()

        # latency at 200/s
        sent: dict[bytes, float] = {}
        total = RATE * STEADY_SECONDS
        async for i in _paced(total):
            key = f"lat-{i}".encode()
            sent[key] = time.perf_counter()
            await producer.send(raw_topic, value=value, key=key, headers=headers)
        await _until(lambda: len(received) >= total, "the latency records")
        latencies = [(t - sent[k]) * 1000 for k, t in received if k in sent]
        stop.set()
        await task
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "throughput": throughput,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


def run() -> dict[str, dict[str, float]]:
    print(
        "\n== Event pipeline (outbox → relay → Kafka → consumer inbox + effect), PostgreSQL ==",
        flush=True,
    )
    with kafka() as bootstrap, postgres() as admin_url:
        tag = uuid.uuid4().hex[:6]
        producer_url = create_database(admin_url, f"bench_producer_{tag}")
        consumer_url = create_database(admin_url, f"bench_consumer_{tag}")
        raw = asyncio.run(raw_baseline(bootstrap))
        pipe = asyncio.run(pipeline(bootstrap, producer_url, consumer_url))
    tput = pipe["throughput"] / raw["throughput"]
    p99 = pipe["p99"] / raw["p99"] if raw["p99"] else float("nan")
    rows = [
        (
            "throughput (events/s)",
            pipe["throughput"],
            raw["throughput"],
            tput,
            f">= {GOAL_THROUGHPUT}x",
        ),
        (
            f"latency p50 at {RATE}/s (ms)",
            pipe["p50"],
            raw["p50"],
            pipe["p50"] / raw["p50"] if raw["p50"] else float("nan"),
            "",
        ),
        (f"latency p99 at {RATE}/s (ms)", pipe["p99"], raw["p99"], p99, f"<= {GOAL_P99:.0f}x"),
    ]
    print(f"  {'figure':<28}{'pipeline':>12}{'raw aiokafka':>14}{'ratio':>9}  goal")
    for name, p, r, ratio, goal in rows:
        print(f"  {name:<28}{p:>12.1f}{r:>14.1f}{ratio:>8.2f}x  {goal}")
    print(
        f"  (writers inserted {pipe['write_rate']:.0f} events/s in transactions of {BATCH};"
        f" {N_THROUGHPUT} events; latency over {RATE * STEADY_SECONDS} events)"
    )
    _report.goal(
        "pipeline",
        f"pipeline throughput >= {GOAL_THROUGHPUT}x raw aiokafka",
        f"{tput:.2f}x ({pipe['throughput']:.0f} / {raw['throughput']:.0f}/s)",
        tput >= GOAL_THROUGHPUT,
    )
    _report.goal(
        "pipeline",
        f"pipeline p99 at {RATE}/s <= {GOAL_P99:.0f}x raw aiokafka's",
        f"{p99:.2f}x ({pipe['p99']:.1f} / {raw['p99']:.1f} ms)",
        p99 <= GOAL_P99,
    )
    return {"pipeline": pipe, "raw": raw}
