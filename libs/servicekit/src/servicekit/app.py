"""``create_service_app``: what makes each service's ``create_app(settings)`` a few lines.

It wires the database (migrations applied at start-up), the outbox relay, the consumers
declared in the service's ``messaging/subscriptions.py``, background workers, telemetry,
metrics, health and problem+json errors, and stops them all in reverse order on shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from contracts import Event
from servicekit import health
from servicekit.db import Database
from servicekit.errors import install_problem_handlers
from servicekit.health import KafkaProbe
from servicekit.messaging.consumer import EventConsumer, Handler
from servicekit.messaging.relay import OutboxRelay
from servicekit.metrics import MetricsMiddleware, ServiceMetrics, metrics_endpoint
from servicekit.migrations import upgrade
from servicekit.settings import ServiceSettings
from servicekit.telemetry import configure_logging, instrument_sqlalchemy, make_tracer_provider

log = logging.getLogger(__name__)


class Worker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class ServiceRuntime:
    """Everything a running service holds; ``app.state.runtime``."""

    settings: ServiceSettings
    db: Database
    metrics: ServiceMetrics
    tracer_provider: TracerProvider
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    kafka_probe: KafkaProbe | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    version: str = "0.1.0",
    routers: Sequence[APIRouter] = (),
    migrations: str,
    subscriptions: Mapping[type[Event], Handler] | None = None,
    consumer_group: str | None = None,
    workers: Callable[[ServiceRuntime], Sequence[Worker]] | None = None,
    on_startup: Sequence[Callable[[ServiceRuntime], Awaitable[None]]] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    configure_logging(settings.service_name, settings.log_level)
    metrics = ServiceMetrics(settings.service_name)
    tracer_provider = make_tracer_provider(settings.service_name,
                                           settings.otel_exporter_otlp_endpoint)
    db = Database(settings.database_url)
    instrument_sqlalchemy(db.engine.sync_engine, tracer_provider)
    runtime = ServiceRuntime(settings=settings, db=db, metrics=metrics,
                             tracer_provider=tracer_provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.run_migrations:
            await upgrade(db, migrations)
        for hook in on_startup:
            await hook(runtime)
        if settings.messaging_enabled:
            runtime.kafka_probe = KafkaProbe(settings.kafka_bootstrap_servers,
                                             client_id=f"{settings.service_name}-health")
            runtime.relay = OutboxRelay(
                db, bootstrap_servers=settings.kafka_bootstrap_servers,
                service_name=settings.service_name, metrics=metrics,
                tracer_provider=tracer_provider, batch_size=settings.relay_batch_size,
                idle_seconds=settings.relay_idle_seconds,
            )
            await runtime.relay.start()
            if subscriptions:
                consumer = EventConsumer(
                    db, bootstrap_servers=settings.kafka_bootstrap_servers,
                    group_id=consumer_group or settings.service_name,
                    subscriptions=subscriptions, service_name=settings.service_name,
                    source=settings.cloudevents_source, metrics=metrics,
                    tracer_provider=tracer_provider,
                    max_attempts=settings.consumer_max_attempts,
                    backoff_initial=settings.consumer_backoff_initial_seconds,
                    backoff_max=settings.consumer_backoff_max_seconds,
                )
                runtime.consumers.append(consumer)
                await consumer.start()
        if workers:
            runtime.workers = list(workers(runtime))
            for worker in runtime.workers:
                await worker.start()
        log.info("%s started", settings.service_name)
        try:
            yield
        finally:
            log.info("%s stopping", settings.service_name)
            for worker in reversed(runtime.workers):
                await _quietly(worker.stop())
            for consumer in runtime.consumers:
                await _quietly(consumer.stop())
            if runtime.relay:
                await _quietly(runtime.relay.stop())
            if runtime.kafka_probe:
                await _quietly(runtime.kafka_probe.close())
            await db.dispose()
            tracer_provider.force_flush(timeout_millis=2000)

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan,
                  openapi_tags=openapi_tags)
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(health.router)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider,
                                       excluded_urls="health/live,health/ready,metrics")
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("error during shutdown")
