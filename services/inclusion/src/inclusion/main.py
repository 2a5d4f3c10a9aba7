"""inclusion: digital-inclusion programmes, venues, sessions, enrolments and device loans.

The service runs with the platform's plumbing (database, outbox relay, health, metrics);
its domain arrives with the digital-inclusion issue.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from inclusion.config import Settings
from inclusion.messaging.subscriptions import SUBSCRIPTIONS
from servicekit.app import create_service_app

MIGRATIONS = str(Path(__file__).parent / "persistence" / "migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Digital inclusion",
        description="Digital-inclusion programmes, venues, sessions and device lending.",
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS or None,
    )
