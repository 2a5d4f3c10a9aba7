"""citizen-services: the catalogue of council digital services and citizens' requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from citizen_services.api import bulk, hsds, open311, requests, services
from citizen_services.api.schemas import render_entry
from citizen_services.application.catalogue import EntryReads
from citizen_services.application.imports import ImportJobWorker
from citizen_services.application.seed import seed_if_empty
from citizen_services.config import Settings
from citizen_services.messaging.subscriptions import SUBSCRIPTIONS
from servicekit.app import ServiceRuntime, create_service_app

MIGRATIONS = str(Path(__file__).parent / "persistence" / "migrations")


@dataclass
class CitizenServicesRuntime(ServiceRuntime):
    """``app.state.runtime``: beyond servicekit's, the catalogue entry reads (a read cache
    emptied by any commit), built once here."""

    entries: EntryReads = field(init=False)

    def __post_init__(self) -> None:
        self.entries = EntryReads.of(self.database, render=render_entry)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def seed(runtime: CitizenServicesRuntime) -> None:
        if settings.seed_data:
            await seed_if_empty(runtime.database, source=settings.cloudevents_source)

    def workers(runtime: CitizenServicesRuntime) -> list[ImportJobWorker]:
        if not settings.import_worker:
            return []
        return [
            ImportJobWorker(
                runtime.database,
                source=settings.cloudevents_source,
                command_of=bulk.command,
                batch_size=settings.import_batch_size,
                batch_pause_seconds=settings.import_batch_pause_seconds,
                stale_seconds=settings.import_stale_seconds,
                max_attempts=settings.import_max_attempts,
                idle_seconds=settings.import_idle_seconds,
            )
        ]

    app = create_service_app(
        settings,
        title="Citizen services",
        description="The catalogue of Milton Keynes council digital services.",
        routers=[bulk.router, services.router, requests.router, open311.router, hsds.router],
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS or None,
        on_startup=[seed],
        workers=workers,
        # catalogue entries are read from a cache emptied by any commit (EntryReads)
        read_caches=True,
        runtime=CitizenServicesRuntime,
    )
    app.add_middleware(hsds.PublicCors)  # /hsds: any origin may read it
    return app
