"""notifications: email/SMS/webhook delivery driven by events; GOV.UK Notify's API v2."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware import Middleware

from notifications.api import (
    messages,
    notify,
    notify_files,
    notify_openapi,
    notify_services,
    preferences,
    sms_inbound,
    templates,
    unsubscribe,
    webhooks,
)
from notifications.application.delivery import EmailDeliveryWorker, SmsDeliveryWorker
from notifications.application.notify_callback_worker import NotifyCallbackWorker
from notifications.application.notify_services import ensure_default_service
from notifications.application.privacy import RetentionWorker
from notifications.application.webhooks import WebhookDeliveryWorker
from notifications.config import Settings
from notifications.domain.notify import NotifyError
from notifications.messaging.subscriptions import SUBSCRIPTIONS
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.runtime import NotificationsRuntime
from servicekit.app import Worker, create_service_app
from servicekit.uow import UnitOfWork

MIGRATIONS = str(Path(__file__).parent / "persistence" / "migrations")


def workers(runtime: NotificationsRuntime) -> list[Worker]:
    database, settings = runtime.database, runtime.settings
    deliveries = [
        EmailDeliveryWorker(database, settings, runtime.email_sender),
        SmsDeliveryWorker(database, settings, runtime.sms_sender),
        WebhookDeliveryWorker(database, settings),
    ]
    for worker in deliveries:
        worker.metrics = runtime.metrics
    return [
        *deliveries,
        RetentionWorker(database, settings),
        NotifyCallbackWorker(database, settings),
        runtime.notify_rate_limiter,  # a worker only to close its Redis connections
    ]


async def ensure_default_notify_service(runtime: NotificationsRuntime) -> None:
    async with UnitOfWork(runtime.database, source=runtime.settings.cloudevents_source) as uow:
        await ensure_default_service(NotifyServiceRepository(uow.db), runtime.settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(
        settings or Settings(),
        title="Notifications",
        description="Email, SMS and webhook delivery driven by platform events; "
        "GOV.UK Notify's API v2 at /v2; templates at /api/v1/templates; "
        "sent messages (staff) at /api/v1/messages; "
        "Notify services and API keys (admins) at /api/v1/notify-services.",
        routers=[
            templates.router,
            messages.router,
            preferences.router,
            unsubscribe.router,
            webhooks.router,
            notify_services.router,
            notify.router,
            notify_files.router,
            sms_inbound.router,
        ],
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS,
        workers=workers,
        on_startup=[ensure_default_notify_service],
        runtime=NotificationsRuntime,
        exception_handlers={NotifyError: notify.notify_error_handler},
        openapi_extra=notify_openapi.add_to,
    )
    # the innermost middleware: the Notify send routes without the router (see there)
    app.user_middleware.append(
        Middleware(
            notify.SendFastPath,
            routes=notify.router.routes,
            exception_handlers=app.exception_handlers,
        )
    )
    return app
