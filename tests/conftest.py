"""Cross-service fixtures: the real services, wired to real Kafka, PostgreSQL and SMTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from citizen_services.config import Settings as CitizenSettings
from mkinfra.smtp_sink import SmtpSink
from notifications.config import Settings as NotificationsSettings


@pytest.fixture(params=["postgresql"])
def service_db(request: pytest.FixtureRequest, tmp_path) -> Callable[[str], str]:  # type: ignore[no-untyped-def]
    """``service_db(name)`` -> a fresh database URL for one service."""
    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path}/{name}.sqlite3"
        return request.getfixturevalue("new_postgres_database")(name.replace("-", "_"))
    return make


@pytest.fixture
def citizen_settings(kafka_bootstrap: str, service_db: Callable[[str], str]) -> CitizenSettings:
    return CitizenSettings(database_url=service_db("citizen-services"),
                           kafka_bootstrap_servers=kafka_bootstrap, environment="test")


@pytest.fixture
def notifications_settings(kafka_bootstrap: str, service_db: Callable[[str], str],
                           smtp_sink: SmtpSink) -> NotificationsSettings:
    return NotificationsSettings(
        database_url=service_db("notifications"), kafka_bootstrap_servers=kafka_bootstrap,
        environment="test", smtp_port=smtp_sink.port,
        staff_alert_email="digital-team@milton-keynes.example",
        consumer_backoff_initial_seconds=0.1, consumer_backoff_max_seconds=1.0,
    )
