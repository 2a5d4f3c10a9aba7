"""The outbox relay: publishes committed outbox rows to Kafka, in order, and marks them.

* A :class:`~servicekit.worker.CommitWokenWorker`: wakes on every commit that added an
  outbox row (``Database.on_commit``), with a short fallback poll for rows written by other
  processes.
* Reads pending rows in id order and sends them with the idempotent producer; the Kafka key
  is the aggregate id, so events of one aggregate stay in order on one partition.
* Marks rows published only after Kafka acknowledged them. A crash between the two publishes
  the batch again: consumers' inboxes make that harmless (at-least-once + dedupe).
* Few round trips a pass, since each costs more than the Python around it on a busy host:
  pending rows are read on the autocommit read engine (no BEGIN / ROLLBACK), a batch is
  marked with one ``UPDATE`` that on PostgreSQL runs on its own in autocommit (one round
  trip instead of BEGIN, UPDATE, the read caches' notify and COMMIT: the outbox is no read
  cache's data), and a batch shorter than ``batch_size`` ends the pass without reading
  again (every row committed after the read woke the relay, which then passes again).
* While Kafka is away it retries with exponential backoff (the worker's ``backoff`` hook;
  commits do not wake it meanwhile), rebuilding the producer.
* One process per service publishes (:class:`~servicekit.leader.Leadership` "outbox-relay":
  a lock beside the SQLite file, or a PostgreSQL advisory lock), however many workers or
  replicas run: rows go out in id order from one place. The others try to take over on each
  pass (every ``idle_seconds``), so a dead leader is replaced within about that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, TracerProvider
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col

from contracts import Envelope
from servicekit.db import Database
from servicekit.leader import Leadership
from servicekit.messaging.producer import make_producer
from servicekit.messaging.tables import OutboxMessage
from servicekit.metrics import ServiceMetrics
from servicekit.telemetry import spans_recorded
from servicekit.worker import CommitWokenWorker

log = logging.getLogger(__name__)

_T = OutboxMessage.__table__  # type: ignore[attr-defined]
#: What the relay reads of a pending row.
_PENDING_COLUMNS = (
    _T.c.id,
    _T.c.topic,
    _T.c.message_key,
    _T.c.envelope,
    _T.c.payload,
    _T.c.event_id,
    _T.c.event_type,
    _T.c.created_at,
)


class OutboxRelay(CommitWokenWorker):
    """The outbox's :class:`~servicekit.worker.CommitWokenWorker`: woken by commits that
    inserted outbox rows, with ``idle_seconds`` as the fallback poll and ``linger_seconds``
    to gather commits; its :meth:`backoff` hook holds it off exponentially while Kafka is
    away (commits do not wake it meanwhile), rebuilding the producer."""

    wake_on = frozenset({OutboxMessage.__tablename__})

    def __init__(
        self,
        database: Database,
        *,
        bootstrap_servers: str,
        service_name: str,
        metrics: ServiceMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
        batch_size: int = 500,
        idle_seconds: float = 1.0,
        linger_seconds: float = 0.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        retain_published: timedelta = timedelta(days=2),
        stop_timeout: float = 2.0,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            database,
            idle_seconds=idle_seconds,
            linger_seconds=linger_seconds,
            stop_timeout=stop_timeout,
        )
        self.name = f"{service_name}-outbox-relay"
        self.bootstrap_servers = bootstrap_servers
        self.kafka_options = dict(kafka_options or {})
        self.service_name = service_name
        self.metrics = metrics
        self.tracer = trace.get_tracer("servicekit.outbox", tracer_provider=tracer_provider)
        self._tracer_provider = tracer_provider
        self.batch_size = batch_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._backoff = backoff_initial
        self.retain_published = retain_published
        self._producer: AIOKafkaProducer | None = None
        self.kafka_ok = False
        self._last_purge = datetime.now(UTC)
        self.leadership = Leadership(database, "outbox-relay")

    # -- the worker's pass and hooks -------------------------------------------------------
    async def run_once(self) -> int:
        """Publish what is pending if this process leads. Returns 0: :meth:`publish_pending`
        drained the outbox (rows committed meanwhile woke the worker for its next pass)."""
        if not await self.leadership.acquire():
            if self.metrics:  # the leader reports the backlog; this process has none
                self.metrics.outbox_backlog.set(0)
                self.metrics.outbox_oldest_age.set(0)
            await self._close_producer()
            self.hold_off(self.idle_seconds)  # another process publishes
            return 0
        await self.publish_pending()
        self._backoff = self.backoff_initial
        await self._maybe_purge()
        return 0

    async def backoff(self, error: Exception) -> float | None:
        """Publishing failed (Kafka away, a send not acknowledged): hold off exponentially,
        rebuilding the producer; the rows stay pending."""
        delay = self._backoff
        self.kafka_ok = False
        log.warning(
            "outbox relay: publishing failed, retrying in %.1fs: %s",
            delay,
            type(error).__name__,
            extra={"error": str(error)[:300]},
        )
        await self._close_producer()
        self._backoff = min(delay * 2, self.backoff_max)
        return delay

    async def close(self) -> None:
        """On stop: a last pass while this process still leads, so what the final requests
        and handlers committed is published before the process goes (bounded by
        ``stop_timeout``; what does not make it stays pending for the next leader)."""
        if self.leadership.held:
            try:
                await asyncio.wait_for(self.publish_pending(), timeout=self.stop_timeout)
            except Exception as exc:
                log.warning("outbox relay: last pass on stop failed: %s", type(exc).__name__)
        await self._close_producer()
        await self.leadership.release()

    async def publish_pending(self) -> int:
        """Publish every pending row (in batches); returns how many were published."""
        total = 0
        while True:
            rows = await self._pending()
            if self.metrics:
                self.metrics.outbox_backlog.set(
                    len(rows) if len(rows) < self.batch_size else await self._backlog()
                )
                self.metrics.outbox_oldest_age.set(_age_seconds(rows[0].created_at) if rows else 0)
            if not rows:
                return total
            producer = await self._ensure_producer()
            sent = await self._send(producer, rows)
            await self.mark_published([r.id for r in rows if r.id is not None and r.id in sent])
            total += len(sent)
            if self.metrics:
                self.metrics.events_published.inc(len(sent))
            if len(sent) < len(rows):
                failed = len(rows) - len(sent)
                raise RuntimeError(f"{failed} outbox message(s) not acknowledged by Kafka")
            if len(rows) < self.batch_size:
                # all that was pending at the read is out; rows committed since then set
                # the wake event, so the loop passes again at once
                return total

    async def _pending(self) -> Sequence[sa.Row[Any]]:
        """The next pending rows, as plain rows of the columns sent (a Core select: building
        ORM objects for each row cost the relay more than publishing it)."""
        async with self.database.read_engine.connect() as conn:
            result = await conn.execute(
                sa.select(*_PENDING_COLUMNS)
                .where(col(OutboxMessage.published_at).is_(None))
                .order_by(col(OutboxMessage.id))
                .limit(self.batch_size)
            )
            return result.all()

    async def _backlog(self) -> int:
        async with self.database.read_engine.connect() as conn:
            result = await conn.execute(
                sa.select(sa.func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.published_at).is_(None))
            )
            return int(result.scalar_one())

    async def _send(self, producer: AIOKafkaProducer, rows: Sequence[sa.Row[Any]]) -> set[int]:
        futures: list[tuple[int, asyncio.Future[object]]] = []
        # Without a span processor (no exporter) the publish span is dropped: send the
        # stored envelope's headers (its traceparent continues the request's trace) and
        # skip the per-row context work.
        recording = spans_recorded(self._tracer_provider)
        for row in rows:
            envelope = Envelope.model_validate_json(row.envelope)
            if not recording:
                fut = await producer.send(
                    row.topic,
                    value=row.payload.encode(),
                    key=row.message_key.encode(),
                    headers=envelope.to_headers(),
                )
                futures.append((row.id or 0, fut))
                continue
            parent = propagate.extract(
                {"traceparent": envelope.traceparent or "", "tracestate": envelope.tracestate or ""}
            )
            token = otel_context.attach(parent)
            try:
                with self.tracer.start_as_current_span(
                    f"{row.topic} publish",
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": row.topic,
                        "messaging.operation.type": "publish",
                        "messaging.message.id": row.event_id,
                        "cloudevents.event_type": row.event_type,
                    },
                ):
                    carrier: dict[str, str] = {}
                    propagate.inject(carrier)
                    headers = envelope.model_copy(
                        update={
                            "traceparent": carrier.get("traceparent", envelope.traceparent),
                            "tracestate": carrier.get("tracestate", envelope.tracestate),
                        }
                    ).to_headers()
                    fut = await producer.send(
                        row.topic,
                        value=row.payload.encode(),
                        key=row.message_key.encode(),
                        headers=headers,
                    )
            finally:
                otel_context.detach(token)
            futures.append((row.id or 0, fut))
        results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        sent = {
            row_id
            for (row_id, _), res in zip(futures, results, strict=True)
            if not isinstance(res, BaseException)
        }
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            log.warning(
                "outbox relay: %d of %d sends failed: %s",
                len(errors),
                len(results),
                type(errors[0]).__name__,
            )
        self.kafka_ok = not errors
        return sent

    async def mark_published(self, ids: list[int]) -> None:
        """Record that Kafka acknowledged these rows. Overridable in fault tests."""
        if not ids:
            return
        now = datetime.now(UTC)
        if self.database.is_postgres:
            # one statement is atomic on its own: autocommit, one round trip
            async with self.database.read_engine.connect() as conn:
                await conn.execute(_MARK_PUBLISHED_PG, {"ids": ids, "now": now})
            return
        stmt = sa.update(_T).where(_T.c.id.in_(ids)).values(published_at=now)
        async with self.database.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, the write lock
            await conn.execute(stmt)

    async def _maybe_purge(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_purge < timedelta(minutes=10):
            return
        self._last_purge = now
        async with self.database.session() as db, db.begin():
            await db.execute(
                sa.delete(OutboxMessage).where(
                    col(OutboxMessage.published_at) < now - self.retain_published
                )
            )

    # -- producer --------------------------------------------------------------------------
    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(
                self.bootstrap_servers,
                client_id=f"{self.service_name}-outbox",
                options=self.kafka_options,
            )
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=5)


#: PostgreSQL: one statement text for every batch size (``= ANY`` of an array): an ``IN``
#: list is a new text per size, so a new prepared statement (a round trip) per size.
_MARK_PUBLISHED_PG = (
    sa.update(_T)
    .where(_T.c.id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.BigInteger))))
    .values(published_at=sa.bindparam("now"))
)


def _age_seconds(created_at: datetime) -> float:
    if created_at.tzinfo is None:  # SQLite keeps no offset: stored as UTC
        created_at = created_at.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - created_at).total_seconds())
