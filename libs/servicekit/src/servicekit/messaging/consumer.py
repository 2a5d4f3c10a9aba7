"""Consuming events: at-least-once delivery made exactly-once in effect by an inbox.

For each record, in partition order:

1. Decode the binary-mode CloudEvent and look its ``type`` up in the contract registry. A
   record that cannot be decoded, or carries a type or version no contract defines, goes to
   ``<topic>.dlq`` at once (retrying cannot help). Known events this consumer did not
   subscribe to are skipped.
2. In one database transaction: insert the inbox row ``(group, event id)`` — if it is
   already there the event was handled before and is skipped — then run the handler, whose
   writes (and any events it records in the outbox) commit together with the inbox row.
3. A handler failure is retried with exponential backoff; after ``max_attempts`` the record
   goes to the DLQ with the error in headers and the consumer moves on.
4. Offsets are committed manually, after processing. A crash re-delivers the uncommitted
   records, which the inbox then skips.

The consumer's span continues the producer's trace (W3C ``traceparent`` header).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, EnvelopeError, Event, UnknownEventType, dlq_name, event_class
from servicekit.db import Database
from servicekit.messaging.outbox import record_event
from servicekit.messaging.producer import make_producer
from servicekit.messaging.tables import InboxMessage
from servicekit.metrics import ServiceMetrics
from servicekit.redact import scrub

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """Raised by a handler when retrying cannot succeed: the record goes straight to the DLQ."""


@dataclass
class MessageContext:
    """What a handler gets beside the event: its transaction and the record's metadata."""

    session: AsyncSession
    envelope: Envelope
    topic: str
    partition: int
    offset: int
    source: str
    published: list[Envelope] = field(default_factory=list)

    def publish(self, event: Event) -> Envelope:
        """Record a follow-up event in the outbox, in this handler's transaction."""
        envelope = record_event(self.session, event, source=self.source)
        self.published.append(envelope)
        return envelope


Handler = Callable[[Any, MessageContext], Awaitable[None]]


@dataclass(frozen=True)
class DeadLetter:
    reason: str  # "undecodable" | "unknown-type" | "handler-failed" | "permanent"
    error: BaseException
    attempts: int


class EventConsumer:
    def __init__(
        self,
        db: Database,
        *,
        bootstrap_servers: str,
        group_id: str,
        subscriptions: Mapping[type[Event], Handler],
        service_name: str,
        source: str,
        metrics: ServiceMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        max_records: int = 500,
    ) -> None:
        if not subscriptions:
            raise ValueError("a consumer needs at least one subscription")
        self.db = db
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.handlers: dict[str, Handler] = {c.event_type(): h for c, h in subscriptions.items()}
        self.topics = sorted({c.topic for c in subscriptions})
        self.service_name = service_name
        self.source = source
        self.metrics = metrics
        self.tracer = trace.get_tracer("servicekit.consumer", tracer_provider=tracer_provider)
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq_producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.connected = False
        self._positions: dict[TopicPartition, int] = {}

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.group_id}-consumer")

    async def stop(self) -> None:
        """Finish the record in hand, commit, leave the group."""
        self._stopping.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=15)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self._close()

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        producer, self._dlq_producer = self._dlq_producer, None
        self.connected = False
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=10)
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=5)

    async def _connect(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{self.service_name}-{self.group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=100,
            max_poll_interval_ms=300_000,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        producer = make_producer(self.bootstrap_servers, client_id=f"{self.group_id}-dlq")
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
                await producer.stop()
            raise
        self._consumer, self._dlq_producer = consumer, producer
        self.connected = True
        log.info("consumer %s subscribed to %s", self.group_id, ",".join(self.topics))
        return consumer

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.backoff_initial
        while not self._stopping.is_set():
            try:
                consumer = self._consumer or await self._connect()
                batch = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                for tp, records in batch.items():
                    await self._process_partition(consumer, tp, records)
                    if self._stopping.is_set():
                        break
                self._record_lag(consumer)
                backoff = self.backoff_initial
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer %s: %s, retrying in %.1fs", self.group_id,
                            type(exc).__name__, backoff, extra={"error": str(exc)[:300]})
                await self._close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, self.backoff_max)

    async def _process_partition(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                                 records: list[ConsumerRecord[Any, Any]]) -> None:
        last_done: int | None = None
        try:
            for record in records:
                if self._stopping.is_set():
                    break
                await self.process(record)
                last_done = record.offset
        finally:
            if last_done is not None:
                await consumer.commit({tp: last_done + 1})
                self._positions[tp] = last_done + 1
            if last_done is None or last_done != records[-1].offset:
                # Unfinished records must be fetched again, not skipped.
                next_offset = records[0].offset if last_done is None else last_done + 1
                with contextlib.suppress(Exception):
                    consumer.seek(tp, next_offset)

    def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        if not self.metrics:
            return
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._positions.get(tp)
            if highwater is None or position is None:
                continue
            self.metrics.consumer_lag.labels(self.group_id, tp.topic, str(tp.partition)).set(
                max(0, highwater - position))

    async def process(self, record: ConsumerRecord[Any, Any]) -> str:
        """Process one record; returns the outcome (handled, duplicate, skipped, dead-lettered)."""
        try:
            envelope = Envelope.from_headers(record.headers)
        except EnvelopeError as exc:
            return await self._dead_letter(record, DeadLetter("undecodable", exc, 0))
        try:
            cls = event_class(envelope.type)
        except UnknownEventType as exc:
            return await self._dead_letter(record, DeadLetter("unknown-type", exc, 0))
        handler = self.handlers.get(envelope.type)
        if handler is None:
            self._count(record.topic, "skipped")
            return "skipped"
        try:
            event = cls.from_json(record.value or b"")
        except (ValidationError, ValueError) as exc:
            return await self._dead_letter(record, DeadLetter("undecodable", exc, 0))

        parent = propagate.extract({k: v.decode(errors="replace")
                                    for k, v in record.headers or () if v is not None})
        with self.tracer.start_as_current_span(
            f"{record.topic} process", context=parent, kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.consumer.group.name": self.group_id,
                "messaging.operation.type": "process",
                "messaging.message.id": envelope.id,
                "messaging.kafka.offset": record.offset,
                "messaging.destination.partition.id": str(record.partition),
                "cloudevents.event_type": envelope.type,
            },
        ) as span:
            outcome = await self._handle_with_retries(record, envelope, event, handler)
            span.set_attribute("servicekit.outcome", outcome)
            if outcome == "dead-lettered":
                span.set_status(Status(StatusCode.ERROR))
            return outcome

    async def _handle_with_retries(self, record: ConsumerRecord[Any, Any], envelope: Envelope,
                                   event: Event, handler: Handler) -> str:
        delay = self.backoff_initial
        for attempt in range(1, self.max_attempts + 1):
            try:
                done = await self._handle_once(record, envelope, event, handler)
                outcome = "handled" if done else "duplicate"
                self._count(record.topic, outcome)
                return outcome
            except PermanentError as exc:
                return await self._dead_letter(record, DeadLetter("permanent", exc, attempt))
            except Exception as exc:
                if attempt >= self.max_attempts:
                    return await self._dead_letter(
                        record, DeadLetter("handler-failed", exc, attempt))
                log.warning("consumer %s: handler failed on attempt %d/%d (%s), retrying",
                            self.group_id, attempt, self.max_attempts, type(exc).__name__)
                if self._stopping.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        raise AssertionError("unreachable")

    async def _handle_once(self, record: ConsumerRecord[Any, Any], envelope: Envelope,
                           event: Event, handler: Handler) -> bool:
        async with self.db.session() as session, session.begin():
            if not await self._claim(session, record, envelope):
                return False
            ctx = MessageContext(session=session, envelope=envelope, topic=record.topic,
                                 partition=record.partition, offset=record.offset,
                                 source=self.source)
            await handler(event, ctx)
        return True

    async def _claim(self, session: AsyncSession, record: ConsumerRecord[Any, Any],
                     envelope: Envelope) -> bool:
        values = {
            "consumer_group": self.group_id, "event_id": envelope.id,
            "event_type": envelope.type, "topic": record.topic,
            "partition": record.partition, "offset": record.offset,
            "processed_at": datetime.now(UTC),
        }
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        stmt = insert(InboxMessage).values(**values).on_conflict_do_nothing()
        result = await session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], dl: DeadLetter) -> str:
        producer = self._dlq_producer
        if producer is None:
            raise RuntimeError("DLQ producer not connected")
        stack = scrub("".join(traceback.format_exception(dl.error)))[-4000:]
        error_text = scrub(f"{type(dl.error).__name__}: {dl.error}")[:2000]
        headers = [*(record.headers or ()),
                   ("dlq-reason", dl.reason.encode()),
                   ("dlq-error", error_text.encode()),
                   ("dlq-error-type", type(dl.error).__name__.encode()),
                   ("dlq-stack", stack.encode()),
                   ("dlq-attempts", str(dl.attempts).encode()),
                   ("dlq-original-topic", record.topic.encode()),
                   ("dlq-original-partition", str(record.partition).encode()),
                   ("dlq-original-offset", str(record.offset).encode()),
                   ("dlq-consumer-group", self.group_id.encode()),
                   ("dlq-failed-at", datetime.now(UTC).isoformat().encode())]
        await producer.send_and_wait(dlq_name(record.topic), value=record.value,
                                     key=record.key, headers=headers)
        log.error("consumer %s: record %s/%d@%d dead-lettered (%s: %s)", self.group_id,
                  record.topic, record.partition, record.offset, dl.reason,
                  type(dl.error).__name__)
        if self.metrics:
            self.metrics.dead_lettered.labels(self.group_id, record.topic, dl.reason).inc()
        self._count(record.topic, "dead-lettered")
        return "dead-lettered"

    def _count(self, topic: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.events_consumed.labels(self.group_id, topic, outcome).inc()
