"""citizen-services: the catalogue of council digital services and citizens' requests."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from citizen_services.api import bulk, hsds, open311, requests, services
from citizen_services.application.seed import seed_if_empty
from citizen_services.config import Settings
from citizen_services.messaging.subscriptions import SUBSCRIPTIONS
from servicekit.app import ServiceRuntime, create_service_app

MIGRATIONS = str(Path(__file__).parent / "persistence" / "migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def seed(runtime: ServiceRuntime) -> None:
        if settings.seed_data:
            await seed_if_empty(runtime.database)

    return create_service_app(
        settings,
        title="Citizen services",
        description="The catalogue of Milton Keynes council digital services.",
        routers=[bulk.router, services.router, requests.router, open311.router, hsds.router],
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS or None,
        on_startup=[seed],
        # catalogue entries are read from a cache emptied by any commit (api/services.py)
        read_caches=True,
    )
