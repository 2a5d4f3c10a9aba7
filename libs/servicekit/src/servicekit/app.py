"""``create_service_app``: what makes each service's ``create_app(settings)`` a few lines.

It wires the database (migrations applied at start-up), the outbox relay, the consumers
declared in the service's ``messaging/subscriptions.py``, background workers, telemetry,
metrics, health and problem+json errors (:mod:`servicekit.problems`: the handlers, and the
errors documented in the app's OpenAPI), and stops them all in reverse order on shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from servicekit import health
from servicekit.db import Database
from servicekit.health import KafkaProbe
from servicekit.leader import exclusive
from servicekit.messaging.consumer import EventConsumer, Subscriptions
from servicekit.messaging.relay import OutboxRelay
from servicekit.metrics import HttpMiddleware, ServiceMetrics, metrics_endpoint
from servicekit.migrations import upgrade
from servicekit.problems import document_problems, install_problem_handlers
from servicekit.settings import ServiceSettings
from servicekit.telemetry import configure_logging, instrument_sqlalchemy, make_tracer_provider

log = logging.getLogger(__name__)


class Worker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class ServiceRuntime:
    """Everything a running service holds; ``app.state.runtime``.

    A service that holds more (senders, caches, limiters) subclasses it as a dataclass
    whose extra fields are ``field(init=False)`` and built in ``__post_init__`` from
    ``settings``, and passes the class as ``create_service_app(runtime=...)``: everything a
    request or worker uses is then built once, in the factory, and typed."""

    settings: ServiceSettings
    database: Database
    metrics: ServiceMetrics
    tracer_provider: TracerProvider
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    kafka_probe: KafkaProbe | None = None


ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    version: str = "0.1.0",
    routers: Sequence[APIRouter] = (),
    migrations: str,
    subscriptions: Subscriptions | None = None,
    consumer_group: str | None = None,
    workers: Callable[[Any], Sequence[Worker]] | None = None,
    read_caches: bool = False,
    on_startup: Sequence[Callable[[Any], Awaitable[None]]] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
    runtime: type[ServiceRuntime] = ServiceRuntime,
    exception_handlers: Mapping[type[Exception], ExceptionHandler] | None = None,
    openapi_extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> FastAPI:
    """``runtime``: the service's :class:`ServiceRuntime` subclass (``workers`` and
    ``on_startup`` get that object); ``exception_handlers``: beyond servicekit's
    problem+json ones; ``openapi_extra``: edits the generated OpenAPI document once (e.g.
    paths documented by hand)."""
    configure_logging(settings.service_name, settings.log_level)
    metrics = ServiceMetrics(settings.service_name)
    tracer_provider = make_tracer_provider(
        settings.service_name, settings.otel_exporter_otlp_endpoint
    )
    database = Database(settings.database_url, read_caches=read_caches)
    if settings.otel_exporter_otlp_endpoint:  # a span per statement only when exported
        instrument_sqlalchemy(database.engine.sync_engine, tracer_provider)
    state = runtime(
        settings=settings, database=database, metrics=metrics, tracer_provider=tracer_provider
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # one process at a time: with several workers or replicas starting together,
        # migrations and seed data must not run concurrently (where migrations run
        # elsewhere, e.g. a deployment's migration job, so does the seeding decision)
        async with (
            exclusive(database, "startup") if settings.run_migrations else contextlib.nullcontext()
        ):
            if settings.run_migrations:
                await upgrade(database, migrations)
            for hook in on_startup:
                await hook(state)
        await database.changes.start()
        if settings.messaging_enabled:
            kafka_options = settings.kafka_security.client_options()
            state.kafka_probe = KafkaProbe(
                settings.kafka_bootstrap_servers,
                client_id=f"{settings.service_name}-health",
                kafka_options=kafka_options,
            )
            state.relay = OutboxRelay(
                database,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                service_name=settings.service_name,
                metrics=metrics,
                tracer_provider=tracer_provider,
                batch_size=settings.relay_batch_size,
                idle_seconds=settings.relay_idle_seconds,
                linger_seconds=settings.relay_linger_seconds,
                kafka_options=kafka_options,
            )
            await state.relay.start()
            if subscriptions:
                consumer = EventConsumer(
                    database,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    group_id=consumer_group or settings.service_name,
                    subscriptions=subscriptions,
                    service_name=settings.service_name,
                    source=settings.cloudevents_source,
                    metrics=metrics,
                    tracer_provider=tracer_provider,
                    max_attempts=settings.consumer_max_attempts,
                    backoff_initial=settings.consumer_backoff_initial_seconds,
                    backoff_max=settings.consumer_backoff_max_seconds,
                    settings=settings,
                    kafka_options=kafka_options,
                )
                state.consumers.append(consumer)
                await consumer.start()
        if workers:
            state.workers = list(workers(state))
            for worker in state.workers:
                await worker.start()
        # Build the OpenAPI document now, not on the first /openapi.json (the gateway's
        # aggregated document fetches it with a time-out; building it takes a CPU-second).
        app.openapi()
        log.info("%s started", settings.service_name)
        try:
            yield
        finally:
            log.info("%s stopping", settings.service_name)
            for worker in reversed(state.workers):
                await _quietly(worker.stop())
            for consumer in state.consumers:
                await _quietly(consumer.stop())
            if state.relay:
                await _quietly(state.relay.stop())
            if state.kafka_probe:
                await _quietly(state.kafka_probe.close())
            await database.dispose()
            tracer_provider.force_flush(timeout_millis=2000)

    # FastAPI's native OpenTelemetry is off: HttpMiddleware records the one span, the
    # request metrics and the request id per request, for a fraction of the cost.
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = state
    install_problem_handlers(app)
    for exc_class, handler in (exception_handlers or {}).items():
        app.add_exception_handler(exc_class, handler)
    app.include_router(health.router)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    app.add_middleware(
        HttpMiddleware,
        metrics=metrics,
        tracer=trace.get_tracer("servicekit.http", tracer_provider=tracer_provider),
        untraced=frozenset({"/health/live", "/health/ready", "/metrics"}),
    )
    _document_problems_of(app, openapi_extra)
    return app


def _document_problems_of(
    app: FastAPI, extra: Callable[[dict[str, Any]], dict[str, Any]] | None
) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = document_problems(generate())
            app.openapi_schema = extra(document) if extra else document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("error during shutdown")
