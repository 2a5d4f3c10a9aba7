"""notifications: email/SMS/webhook delivery driven by events."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from notifications.application.delivery import EmailDeliveryWorker
from notifications.config import Settings
from notifications.messaging.subscriptions import build_subscriptions
from servicekit.app import ServiceRuntime, create_service_app

MIGRATIONS = str(Path(__file__).parent / "persistence" / "migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    cfg = settings

    def workers(runtime: ServiceRuntime) -> list[EmailDeliveryWorker]:
        return [EmailDeliveryWorker(runtime.db, cfg)]

    return create_service_app(
        settings,
        title="Notifications",
        description="Email, SMS and webhook delivery driven by platform events.",
        migrations=MIGRATIONS,
        subscriptions=build_subscriptions(settings),
        workers=workers,
    )
