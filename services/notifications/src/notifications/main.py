"""notifications: email/SMS/webhook delivery driven by events; GOV.UK Notify's API v2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from notifications.api import (
    notify,
    notify_openapi,
    notify_services,
    preferences,
    templates,
    unsubscribe,
    webhooks,
)
from notifications.application.delivery import EmailDeliveryWorker, SmsDeliveryWorker
from notifications.application.notify_api import RateLimiter, ensure_default_service
from notifications.application.privacy import RetentionWorker
from notifications.application.webhooks import WebhookDeliveryWorker
from notifications.config import Settings
from notifications.domain.notify import NotifyError
from notifications.messaging.subscriptions import build_subscriptions
from servicekit.app import ServiceRuntime, Worker, create_service_app

MIGRATIONS = str(Path(__file__).parent / "persistence" / "migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    cfg = settings

    def workers(runtime: ServiceRuntime) -> list[Worker]:
        database = runtime.database
        return [EmailDeliveryWorker(database, cfg), SmsDeliveryWorker(database, cfg),
                WebhookDeliveryWorker(database, cfg), RetentionWorker(database, cfg)]

    async def ensure_default_notify_service(runtime: ServiceRuntime) -> None:
        async with runtime.database.session() as session:
            await ensure_default_service(session, cfg)
            await session.commit()

    app = create_service_app(
        settings,
        title="Notifications",
        description="Email, SMS and webhook delivery driven by platform events; "
                    "GOV.UK Notify's API v2 at /v2; templates at /api/v1/templates; "
                    "Notify services and API keys (admins) at /api/v1/notify-services.",
        routers=[templates.router, preferences.router, unsubscribe.router, webhooks.router,
                 notify_services.router, notify.router],
        migrations=MIGRATIONS,
        subscriptions=build_subscriptions(settings),
        workers=workers,
        on_startup=[ensure_default_notify_service],
    )
    app.add_exception_handler(NotifyError, notify.notify_error_handler)
    generate = app.openapi

    def openapi() -> dict[str, Any]:  # the generated document, and /v2 described by hand
        if app.openapi_schema is None:
            app.openapi_schema = notify_openapi.add_to(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.notify_rate_limiter = RateLimiter(settings.notify_rate_limit_per_minute)
    return app
