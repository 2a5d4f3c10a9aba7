"""Helpers for tests of any service: run an ASGI app on a real port, wait for things."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_app(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn (lifespan included) in this loop; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="none",
        # like production: the socket peer is the client, and
        # connections outlive the gateway's pooled keep-alive
        proxy_headers=False,
        timeout_keep_alive=75,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition not met",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{message} (last value: {last!r})")


async def _partitions(consumer: Any, topic: str) -> list[Any]:
    """``topic``'s partitions (``TopicPartition`` objects) in order, asking the cluster for
    fresh metadata when ``consumer`` knows none yet."""
    from aiokafka import TopicPartition

    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """The current end offset of each partition of ``topic``."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        ends = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    start: dict[int, int] | None = None,
    count: int | None = None,
    timeout: float = 20.0,
    predicate: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """Read records from ``start`` offsets (default: the beginning) until ``count`` matching
    records arrived or ``timeout`` passed (then return what arrived)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        for tp in tps:
            if start and tp.partition in start:
                consumer.seek(tp, start[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (count is None or len(records) < count):
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(r for r in recs if predicate is None or predicate(r))
        return records
    finally:
        await consumer.stop()


def identity_headers(
    subject: str | None, *roles: str, secret: str | None = None, scopes: tuple[str, ...] = ()
) -> dict[str, str]:
    """Headers a service sees when the gateway forwards a request from this caller."""
    from servicekit.identity import (
        ASSERTION_HEADER,
        AuthMethod,
        Principal,
        Role,
        sign_assertion,
    )
    from servicekit.settings import DEV_SECRET

    principal = Principal(
        subject=subject,
        roles=frozenset(Role(r) for r in roles),
        scopes=frozenset(scopes),
        method=AuthMethod.JWT,
    )
    return {ASSERTION_HEADER: sign_assertion(principal, secret or DEV_SECRET)}


STAFF = ("staff-test-1", "staff")
CITIZEN = ("citizen-test-1", "citizen")


def consumer_record(
    event: Any, offset: int, *, source: str = "urn:uk-gov-milton-keynes:test", partition: int = 0
) -> Any:
    """``event`` as the Kafka record a consumer would fetch (CloudEvents binary mode), to
    drive ``EventConsumer.process`` without a broker in handler-level tests."""
    from aiokafka.structs import ConsumerRecord

    from contracts import Envelope

    envelope = Envelope(
        source=source,
        type=event.event_type(),
        subject=event.aggregate_id,
        dataschema=event.dataschema(),
    )
    value, key = event.to_json(), event.aggregate_id.encode()
    return ConsumerRecord(
        topic=event.topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=envelope.to_headers(),
    )
