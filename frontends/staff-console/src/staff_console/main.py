"""The staff console: ``create_app(settings)`` → the FastAPI app (webkit's front-end with the
console's views). Every page and action checks the user's roles on the server
(:mod:`staff_console.auth`) and calls the gateway's API only, as that user."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from servicekit.telemetry import configure_logging
from staff_console.config import ConsoleSettings
from staff_console.views import (
    admin,
    attributes,
    catalogue,
    inclusion,
    inclusion_more,
    messages,
    notifications,
    pages,
    queue,
    template_edit,
    transfer,
    webhooks,
)
from webkit.app import Link, create_frontend

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: The console's own scripts (progressive enhancement), at ``/console-assets``.
STATIC = Path(__file__).resolve().parent / "static"
NAVIGATION = (
    Link("Catalogue", "/catalogue"),
    Link("Request queue", "/requests"),
    Link("Digital inclusion", "/inclusion"),
    Link("Notifications", "/notifications/templates"),
    Link("Partner webhooks", "/webhooks"),
)
FOOTER = (Link("Accessibility statement", "/accessibility"),)
#: The console's own routes (webkit adds sign-in, sign-out, assets and health): every one
#: needs a staff role except these (a test walks them all).
ROUTERS = (
    pages.router,
    transfer.router,
    attributes.router,  # before catalogue's /{service_id}/{action}
    catalogue.router,
    queue.router,
    inclusion.router,
    inclusion_more.router,
    notifications.router,
    notifications.admin,
    messages.router,
    template_edit.router,
    admin.router,
    webhooks.router,
)
#: Pages for admins only (staff who are not admins are turned away too).
ADMIN_PREFIXES = ("/notifications/services", "/admin/", "/webhooks")
#: The partner area: admins and partners (their own subscriptions), no one else.
PARTNER_PREFIXES = ("/webhooks",)
PUBLIC_PATHS = frozenset({"/accessibility"})


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    configure_logging(settings.service_name, settings.log_level)
    app = create_frontend(
        settings,
        site_name="Milton Keynes City Council",
        service_name="Staff console",
        templates=TEMPLATES,
        navigation=NAVIGATION,
        footer_links=FOOTER,
        routers=ROUTERS,
    )
    app.mount("/console-assets", StaticFiles(directory=STATIC), name="console-assets")
    return app
