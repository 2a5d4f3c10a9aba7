"""The citizen portal: ``create_app(settings)`` → the FastAPI app (webkit's front-end with the
portal's views). Every page calls the gateway's public API only."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from citizen_portal.config import PortalSettings
from citizen_portal.views import find, help, pages, preferences, report, requests
from servicekit.telemetry import configure_logging
from webkit.app import Link, create_frontend

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAVIGATION = (
    Link("Find a service", "/services"),
    Link("Report a problem", "/report"),
    Link("My reports", "/requests"),
    Link("Help getting online", "/help"),
    Link("Contact preferences", "/preferences"),
)


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    configure_logging(settings.service_name, settings.log_level)
    return create_frontend(
        settings,
        site_name="Milton Keynes City Council",
        service_name="Council services",
        templates=TEMPLATES,
        navigation=NAVIGATION,
        routers=[
            pages.router,
            find.router,
            report.router,
            requests.router,
            help.router,
            preferences.router,
        ],
    )
