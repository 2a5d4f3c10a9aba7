"""inclusion: digital-inclusion programmes, venues, sessions and enrolments.

``create_app(settings)`` wires the routers, the migrations and the seed-data hook onto
servicekit's service app (database, outbox relay, health, metrics, problem+json).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from inclusion.api import (
    devices,
    enrolments,
    help,
    participants,
    programmes,
    reports,
    sessions,
    venues,
    vouchers,
)
from inclusion.application.scheduler import Scheduler
from inclusion.application.seed import seed_if_empty
from inclusion.config import Settings
from inclusion.messaging.subscriptions import SUBSCRIPTIONS
from servicekit.app import ServiceRuntime, Worker, create_service_app

MIGRATIONS = str(Path(__file__).parent / "persistence" / "migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def seed(runtime: ServiceRuntime) -> None:
        if settings.seed_data:
            await seed_if_empty(runtime.database, source=settings.cloudevents_source)

    def workers(runtime: ServiceRuntime) -> list[Worker]:
        if not settings.scheduler_enabled:
            return []
        return [
            Scheduler(
                runtime.database,
                source=settings.cloudevents_source,
                interval=settings.scheduler_interval_seconds,
                metrics=runtime.metrics,
            )
        ]

    return create_service_app(
        settings,
        title="Digital inclusion",
        description="Digital-inclusion programmes, venues, sessions, enrolments with "
        "waitlists, and help near me.",
        routers=[
            programmes.router,
            venues.router,
            sessions.router,
            enrolments.router,
            participants.router,
            devices.router,
            vouchers.router,
            reports.router,
            help.router,
        ],
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS or None,
        on_startup=[seed],
        workers=workers,
    )
