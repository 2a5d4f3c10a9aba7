"""The staff console: ``create_app(settings)`` → the FastAPI app (webkit's front-end with the
console's views). Every page and action checks the user's roles on the server
(:mod:`staff_console.auth`) and calls the gateway's API only, as that user."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from servicekit.telemetry import configure_logging
from staff_console.auth import ADMIN_ROLES, STAFF_ROLES
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
from staff_console.views.webhooks import WEBHOOK_ROLES
from webkit.app import Link, User, create_frontend

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: The console's own scripts (progressive enhancement), at ``/console-assets``.
STATIC = Path(__file__).resolve().parent / "static"
#: The service navigation: each area shown to the roles its pages let in (staff: the staff
#: areas; admins also the admin areas; partners only the partner area).
NAVIGATION = (
    Link("Catalogue", "/catalogue", STAFF_ROLES),
    Link("Request queue", "/requests", STAFF_ROLES),
    Link("Digital inclusion", "/inclusion", STAFF_ROLES),
    Link("Notifications", "/notifications/templates", STAFF_ROLES),
    Link("Partner webhooks", "/webhooks", WEBHOOK_ROLES),
    Link("API keys", "/admin/api-keys", ADMIN_ROLES),
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


def home_of(user: User | None) -> str:
    """The header's links: the console's home, or a partner's area for a partner."""
    if user is not None and not user.has_any(*STAFF_ROLES) and user.has_any(*WEBHOOK_ROLES):
        return PARTNER_PREFIXES[0]
    return "/"


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
        home=home_of,
    )
    app.mount("/console-assets", StaticFiles(directory=STATIC), name="console-assets")
    return app
