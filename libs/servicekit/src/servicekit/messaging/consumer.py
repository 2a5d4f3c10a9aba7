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

Offsets are committed in the background, never before the records' transaction committed:
a partition's next offset is handed to a committer task once its transaction is done, and
the loop fetches the next batch meanwhile (a commit is a round trip to the group coordinator;
awaited between batches it held every partition up). Offsets handed over while a commit is
on its way are coalesced into the next one. A failed commit makes the loop reconnect, as an
awaited one did; stopping flushes what is pending before leaving the group. A crash before
the commit reaches the broker re-delivers those records, which the inbox absorbs.

For throughput, a fetched batch of one partition is first tried in a single transaction
(one inbox row and one span per record, effects committed together; the inbox rows of a
batch are one statement); if any record must be dead-lettered or any handler fails, nothing
of it commits and the batch is processed record by record as above. Partitions are
processed side by side, each by a task of its own: the loop fetches again while they work,
so one partition's transaction holds no other partition up. Records fetched for a partition
while its task works wait and are taken together, in order, as its next batch (so batches
stay large under load); if a batch does not finish (a failure, or stopping) what waited
behind it is dropped and fetched again.

The consumer's span continues the producer's trace (W3C ``traceparent`` header). Without a
span processor (no exporter) no span is started: the record's trace context is made current
for its handlers, so what they log and publish still carries the trace.

This module is the loop (fetching, partitions, batches, retries, offsets); the inbox claim
(one function, for a batch or a single record) is :mod:`servicekit.messaging.inbox` and the
dead-letter queue :mod:`servicekit.messaging.dlq`. :meth:`EventConsumer._handle` is the one
place that builds a handler's :class:`MessageContext` and runs its handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, EnvelopeError, Event, UnknownEventType, event_class
from servicekit.db import Database
from servicekit.messaging import inbox
from servicekit.messaging.dlq import DeadLetter, send_to_dlq
from servicekit.messaging.producer import make_producer
from servicekit.metrics import ServiceMetrics
from servicekit.telemetry import spans_recorded
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)


#: How long an idle consumer's fetch waits on the broker (see ``_connect``).
FETCH_MAX_WAIT_MS = 5000


@contextlib.contextmanager
def _current(parent: otel_context.Context) -> Iterator[trace.Span]:
    """Make ``parent`` (an extracted trace context) current; yields its span, which records
    nothing (a handler's ``set_status`` and ``set_attribute`` on it are no-ops)."""
    token = otel_context.attach(parent)
    try:
        yield trace.get_current_span(parent)
    finally:
        otel_context.detach(token)


class PermanentError(Exception):
    """Raised by a handler when retrying cannot succeed: the record goes straight to the DLQ."""


@dataclass
class MessageContext:
    """What a handler gets beside the event: the unit of work it writes through (the
    consumer commits it, with the inbox row), the record's metadata and the service's
    settings."""

    uow: UnitOfWork
    envelope: Envelope
    topic: str
    partition: int
    offset: int
    settings: Any = None


Handler = Callable[[Any, MessageContext], Awaitable[None]]
#: What a service's ``messaging/subscriptions.py`` declares: each event type it consumes and
#: its handlers, run in this order in one transaction.
Subscriptions = Mapping[type[Event], Sequence[Handler]]


@dataclass(frozen=True)
class _Decoded:
    record: ConsumerRecord[Any, Any]
    envelope: Envelope
    event: Event
    handlers: Sequence[Handler]


@dataclass(frozen=True)
class _BatchFailure:
    offset: int  # the record whose handler failed
    error: BaseException


class _HandlerFailed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class EventConsumer:
    def __init__(
        self,
        database: Database,
        *,
        bootstrap_servers: str,
        group_id: str,
        subscriptions: Subscriptions,
        service_name: str,
        source: str,
        metrics: ServiceMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        max_records: int = 500,
        settings: Any = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not subscriptions:
            raise ValueError("a consumer needs at least one subscription")
        self.database = database
        self.bootstrap_servers = bootstrap_servers
        #: TLS/SASL keyword arguments of every client it makes (consumer, DLQ producer)
        self.kafka_options = dict(kafka_options or {})
        self.group_id = group_id
        self.handlers: dict[str, Sequence[Handler]] = {
            c.event_type(): tuple(handlers) for c, handlers in subscriptions.items() if handlers
        }
        self.settings = settings
        self.topics = sorted({c.topic for c in subscriptions})
        self.service_name = service_name
        self.source = source
        self.metrics = metrics
        self.tracer = trace.get_tracer("servicekit.consumer", tracer_provider=tracer_provider)
        self._tracer_provider = tracer_provider
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
        #: Processed (their transaction committed), not yet committed to Kafka.
        self._uncommitted: dict[TopicPartition, int] = {}
        self._commit_wake = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._commit_error: BaseException | None = None
        #: Per partition: the task processing its records, and the records waiting for it.
        self._workers: dict[TopicPartition, asyncio.Task[None]] = {}
        self._waiting: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}

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
        tasks = list(self._workers.values())
        self._workers.clear()
        self._waiting.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        committer, self._committer = self._committer, None
        if committer is not None:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await committer
        if consumer is not None and self._uncommitted:
            # what was processed goes to Kafka before leaving the group (best effort: what
            # does not is re-delivered to whoever gets the partition, and the inbox skips it)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._commit_pending(consumer), timeout=10)
        self._uncommitted.clear()
        self._commit_error = None
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
            **self.kafka_options,
            group_id=self.group_id,
            client_id=f"{self.service_name}-{self.group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # A fetch waits on the broker until a record arrives (then answers at once), so
            # this bounds only how often an idle consumer asks: 100 ms was 10 requests a
            # second per consumer, the largest part of an idle platform's CPU (broker too).
            # It adds no latency: aiokafka sends one fetch per broker for all assigned
            # partitions once the previous records are consumed, and any partition's new
            # record answers it.
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
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
        producer = make_producer(
            self.bootstrap_servers, client_id=f"{self.group_id}-dlq", options=self.kafka_options
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
                await producer.stop()
            raise
        self._consumer, self._dlq_producer = consumer, producer
        self._uncommitted.clear()
        self._commit_error = None
        self._committer = asyncio.create_task(
            self._commit_loop(consumer), name=f"{self.group_id}-offsets"
        )
        self.connected = True
        log.info("consumer %s subscribed to %s", self.group_id, ",".join(self.topics))
        return consumer

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        await self._loop(self.backoff_initial)
        # stopping: let the partitions finish the record (or batch) in hand (if this task
        # is cancelled instead, _close cancels them)
        tasks = list(self._workers.values())
        if tasks:
            await asyncio.wait(tasks)

    async def _loop(self, backoff: float) -> None:
        while not self._stopping.is_set():
            try:
                consumer = self._consumer or await self._connect()
                self._reap_workers()
                if any(len(w) >= self.max_records for w in self._waiting.values()):
                    await asyncio.sleep(0.005)  # back-pressure: a partition is behind
                    continue
                batch = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                # Partitions are independent (order is per partition): process them side by
                # side, each in its own transaction, while the loop fetches on.
                for tp, records in batch.items():
                    self._waiting.setdefault(tp, []).extend(records)
                    worker = self._workers.get(tp)
                    if worker is None or worker.done():
                        self._workers[tp] = asyncio.create_task(
                            self._partition_worker(consumer, tp)
                        )
                self._record_lag(consumer)
                backoff = self.backoff_initial
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "consumer %s: %s, retrying in %.1fs",
                    self.group_id,
                    type(exc).__name__,
                    backoff,
                    extra={"error": str(exc)[:300]},
                )
                await self._close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, self.backoff_max)

    def _reap_workers(self) -> None:
        """Forget finished partition workers, raising the first failure (the loop then
        reconnects, as for any other failure); a failed offset commit is raised here too."""
        for tp, worker in list(self._workers.items()):
            if not worker.done():
                continue
            del self._workers[tp]
            if not worker.cancelled() and worker.exception() is not None:
                raise worker.exception()  # type: ignore[misc]
        if self._commit_error is not None:
            raise self._commit_error

    async def _partition_worker(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """Process the partition's waiting records, all of them as one batch, until none
        wait. If a batch does not finish, what waits is dropped: ``_process_partition`` sought
        back to the first unfinished record, so it is all fetched again."""
        finished = True
        try:
            while records := self._waiting.pop(tp, None):
                finished = False
                finished = await self._process_partition(consumer, tp, records)
                if not finished:
                    return
        finally:
            if not finished:
                self._waiting.pop(tp, None)

    async def _process_partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord[Any, Any]],
    ) -> bool:
        """Process one partition's batch in order; True when all of it is done."""
        failed: _BatchFailure | None = None
        if len(records) > 1 and not self._stopping.is_set():
            done, failed = await self._process_batch(records)
            if done:
                self._done(tp, records[done - 1].offset + 1)
                records = records[done:]
                if not records:
                    return True
        last_done: int | None = None
        try:
            for record in records:
                if self._stopping.is_set():
                    break
                if failed is not None and failed.offset == record.offset:
                    await self.process(record, prior_failure=failed.error)
                else:
                    await self.process(record)
                last_done = record.offset
        finally:
            if last_done is not None:
                self._done(tp, last_done + 1)
            if last_done is None or last_done != records[-1].offset:
                # Unfinished records must be fetched again, not skipped.
                next_offset = records[0].offset if last_done is None else last_done + 1
                with contextlib.suppress(Exception):
                    consumer.seek(tp, next_offset)
        return last_done is not None and last_done == records[-1].offset

    def _done(self, tp: TopicPartition, next_offset: int) -> None:
        """Records of ``tp`` before ``next_offset`` are processed and their transaction has
        committed: their offset may now be committed (by the committer task)."""
        self._positions[tp] = next_offset
        self._uncommitted[tp] = next_offset
        self._commit_wake.set()

    async def _commit_loop(self, consumer: AIOKafkaConsumer) -> None:
        """Commit handed-over offsets, coalescing those that arrive during a commit."""
        while True:
            await self._commit_wake.wait()
            self._commit_wake.clear()
            try:
                await self._commit_pending(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._commit_error = exc  # the loop reconnects (see _run)
                return

    async def _commit_pending(self, consumer: AIOKafkaConsumer) -> None:
        offsets = dict(self._uncommitted)
        if not offsets:
            return
        await consumer.commit(offsets)
        for tp, offset in offsets.items():  # keep what was handed over meanwhile
            if self._uncommitted.get(tp) == offset:
                del self._uncommitted[tp]

    def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        if not self.metrics:
            return
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._positions.get(tp)
            if highwater is None or position is None:
                continue
            self.metrics.consumer_lag.labels(self.group_id, tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )

    def _decode(self, record: ConsumerRecord[Any, Any]) -> _Decoded | DeadLetter | None:
        """The record's envelope, event and handler; a DeadLetter; or None to skip it."""
        try:
            envelope = Envelope.from_headers(record.headers)
        except EnvelopeError as exc:
            return DeadLetter("undecodable", exc, 0)
        try:
            cls = event_class(envelope.type)
        except UnknownEventType as exc:
            return DeadLetter("unknown-type", exc, 0)
        handlers = self.handlers.get(envelope.type)
        if handlers is None:
            return None
        try:
            event = cls.from_json(record.value or b"")
        except (ValidationError, ValueError) as exc:
            return DeadLetter("undecodable", exc, 0)
        return _Decoded(record, envelope, event, handlers)

    def _span(self, d: _Decoded) -> Any:
        """The record's ``process`` span, a child of the producer's (``traceparent``).

        Without a span processor (no exporter) the span would be dropped: the record's trace
        context is made current instead (what a handler's events and log lines carry on),
        without parsing every header, building attributes or starting a span per record."""
        envelope = d.envelope
        parent = propagate.extract(
            {"traceparent": envelope.traceparent or "", "tracestate": envelope.tracestate or ""}
        )
        if not spans_recorded(self._tracer_provider):
            return _current(parent)
        record = d.record
        return self.tracer.start_as_current_span(
            f"{record.topic} process",
            context=parent,
            kind=SpanKind.CONSUMER,
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
        )

    async def _process_batch(
        self,
        records: list[ConsumerRecord[Any, Any]],
    ) -> tuple[int, _BatchFailure | None]:
        """Handle the leading records of one partition's batch in one transaction.

        Each record still gets its own inbox row and span; their effects commit together.
        Returns how many leading records are done, and the handler failure (if any) of the
        first record not done: the caller processes the rest one by one, with retries and
        the DLQ, counting that failure as the record's first attempt. A record that must be
        dead-lettered ends the batch before it.
        """
        decoded: list[_Decoded | None] = []
        for record in records:
            d = self._decode(record)
            if isinstance(d, DeadLetter):
                break
            decoded.append(d)
        if not decoded:
            return 0, None
        failed_at, error = await self._run_batch(decoded)
        if failed_at is None:
            return len(decoded), None
        if failed_at == 0 or error is None:
            return 0, (_BatchFailure(records[0].offset, error) if error is not None else None)
        # A handler failed part-way: nothing committed. Commit the records before it again.
        again, _ = await self._run_batch(decoded[:failed_at])
        if again is not None:
            return 0, None
        return failed_at, _BatchFailure(records[failed_at].offset, error)

    async def _run_batch(
        self,
        decoded: list[_Decoded | None],
    ) -> tuple[int | None, BaseException | None]:
        """One transaction over ``decoded`` (None = skip). Returns (None, None) when it
        committed; (index, error) when the handler of ``decoded[index]`` raised; (0, None)
        for any other failure (inbox or commit)."""
        to_handle = [d for d in decoded if d is not None]
        handled = duplicates = 0
        current = 0
        try:
            async with UnitOfWork(self.database, source=self.source) as uow:
                claimed = await self._claim(uow.db, to_handle)
                for current, d in enumerate(decoded):
                    if d is None:
                        continue
                    if d.envelope.id not in claimed:
                        duplicates += 1
                        continue
                    claimed.discard(d.envelope.id)  # the same event twice in one batch
                    with self._span(d) as span:
                        try:
                            await self._handle(uow, d)
                        except Exception as exc:
                            span.set_status(Status(StatusCode.ERROR))
                            raise _HandlerFailed(current, exc) from exc
                        span.set_attribute("servicekit.outcome", "handled")
                    handled += 1
        except _HandlerFailed as failure:
            log.info(
                "consumer %s: handler failed in a batch (%s); one by one from there",
                self.group_id,
                type(failure.error).__name__,
            )
            return failure.index, failure.error
        except Exception as exc:
            log.info(
                "consumer %s: batch of %d failed (%s); one by one now",
                self.group_id,
                len(decoded),
                type(exc).__name__,
            )
            return 0, None
        if self.metrics:
            topic = decoded[0].record.topic if decoded[0] else ""
            skipped = len(decoded) - len(to_handle)
            for outcome, n in (
                ("handled", handled),
                ("duplicate", duplicates),
                ("skipped", skipped),
            ):
                if n and topic:
                    self.metrics.events_consumed.labels(self.group_id, topic, outcome).inc(n)
        return None, None

    async def _claim(self, db: AsyncSession, decoded: Sequence[_Decoded]) -> set[str]:
        """The inbox rows of ``decoded`` (a batch, or one record); returns the event ids to
        handle now (the others were handled before)."""
        return await inbox.claim(
            db,
            self.group_id,
            [
                inbox.Delivery(
                    event_id=d.envelope.id,
                    event_type=d.envelope.type,
                    topic=d.record.topic,
                    partition=d.record.partition,
                    offset=d.record.offset,
                )
                for d in decoded
            ],
        )

    async def _handle(self, uow: UnitOfWork, d: _Decoded) -> None:
        """Run the event's handlers, in order, in ``uow``: the one place a handler's
        :class:`MessageContext` is built."""
        ctx = MessageContext(
            uow=uow,
            envelope=d.envelope,
            topic=d.record.topic,
            partition=d.record.partition,
            offset=d.record.offset,
            settings=self.settings,
        )
        for handler in d.handlers:
            await handler(d.event, ctx)

    async def process(
        self, record: ConsumerRecord[Any, Any], *, prior_failure: BaseException | None = None
    ) -> str:
        """Process one record; returns the outcome (handled, duplicate, skipped, dead-lettered).

        ``prior_failure``: the handler already failed once on this record (in a batch); that
        counts as its first attempt."""
        d = self._decode(record)
        if isinstance(d, DeadLetter):
            return await self._dead_letter(record, d)
        if d is None:
            self._count(record.topic, "skipped")
            return "skipped"
        with self._span(d) as span:
            outcome = await self._handle_with_retries(d, prior_failure=prior_failure)
            span.set_attribute("servicekit.outcome", outcome)
            if outcome == "dead-lettered":
                span.set_status(Status(StatusCode.ERROR))
            return outcome

    async def _handle_with_retries(
        self, d: _Decoded, *, prior_failure: BaseException | None = None
    ) -> str:
        record = d.record
        delay = self.backoff_initial
        first = 1
        if prior_failure is not None:
            if isinstance(prior_failure, PermanentError):
                return await self._dead_letter(record, DeadLetter("permanent", prior_failure, 1))
            if self.max_attempts <= 1:
                return await self._dead_letter(
                    record, DeadLetter("handler-failed", prior_failure, 1)
                )
            first = 2
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)
        for attempt in range(first, self.max_attempts + 1):
            try:
                done = await self._handle_once(d)
                outcome = "handled" if done else "duplicate"
                self._count(record.topic, outcome)
                return outcome
            except PermanentError as exc:
                return await self._dead_letter(record, DeadLetter("permanent", exc, attempt))
            except Exception as exc:
                if attempt >= self.max_attempts:
                    return await self._dead_letter(
                        record, DeadLetter("handler-failed", exc, attempt)
                    )
                log.warning(
                    "consumer %s: handler failed on attempt %d/%d (%s), retrying",
                    self.group_id,
                    attempt,
                    self.max_attempts,
                    type(exc).__name__,
                )
                if self._stopping.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        raise AssertionError("unreachable")

    async def _handle_once(self, d: _Decoded) -> bool:
        """One attempt in a transaction of its own; False if the inbox had the event."""
        async with UnitOfWork(self.database, source=self.source) as uow:
            if not await self._claim(uow.db, [d]):
                return False
            await self._handle(uow, d)
        return True

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], dl: DeadLetter) -> str:
        producer = self._dlq_producer
        if producer is None:
            raise RuntimeError("DLQ producer not connected")
        await send_to_dlq(producer, record, dl, self.group_id)
        if self.metrics:
            self.metrics.dead_lettered.labels(self.group_id, record.topic, dl.reason).inc()
        self._count(record.topic, "dead-lettered")
        return "dead-lettered"

    def _count(self, topic: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.events_consumed.labels(self.group_id, topic, outcome).inc()
