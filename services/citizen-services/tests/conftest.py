"""Fixtures for citizen-services: every API test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from citizen_services.config import Settings
from citizen_services.main import create_app
from servicekit.testing import STAFF, identity_headers


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, messaging_enabled=False, environment="test", seed_data=False
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with its lifespan run (migrations applied), messaging off; requests carry a
    staff member's identity assertion, as the gateway would forward it."""
    with TestClient(create_app(settings), headers=identity_headers(*STAFF)) as c:
        yield c


@pytest.fixture
def anonymous_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c
