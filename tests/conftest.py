"""Cross-service fixtures: the real services, wired to real Kafka, PostgreSQL and SMTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from citizen_services.config import Settings as CitizenSettings
from citizen_services.main import create_app as citizen_app
from gateway.auth import AuthSettings
from gateway.auth.devissuer import DevIssuer
from gateway.config import GatewaySettings
from gateway.devcreds import ensure_dev_credentials
from gateway.limits import LimitSettings
from gateway.main import Gateway
from gateway.main import create_app as gateway_app
from inclusion.config import Settings as InclusionSettings
from inclusion.main import create_app as inclusion_app
from mkinfra.smtp_sink import SmtpSink
from notifications.config import Settings as NotificationsSettings
from notifications.main import create_app as notifications_app
from servicekit.testing import eventually, running_app


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


@dataclass
class Platform:
    """The three services and the gateway, running on real ports, with dev credentials."""

    gateway_url: str
    service_urls: dict[str, str]
    credentials: dict[str, str]
    issuer: DevIssuer
    gateway: Gateway
    apps: dict[str, Any]

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials[name]}"}


@asynccontextmanager
async def run_platform(*, tmp: Path, kafka_bootstrap: str, smtp_port: int,
                       database: Callable[[str], str],
                       limit_settings: LimitSettings | None = None,
                       staff_alert_email: str | None = "digital-team@milton-keynes.example",
                       notifications_overrides: dict[str, Any] | None = None,
                       ) -> AsyncIterator[Platform]:
    common = {"kafka_bootstrap_servers": kafka_bootstrap, "environment": "test"}
    apps = {
        "citizen-services": citizen_app(CitizenSettings(
            database_url=database("citizen-services"), **common)),
        "inclusion": inclusion_app(InclusionSettings(
            database_url=database("inclusion"), **common)),
        "notifications": notifications_app(NotificationsSettings(
            database_url=database("notifications"), smtp_port=smtp_port,
            staff_alert_email=staff_alert_email, consumer_backoff_initial_seconds=0.1,
            consumer_backoff_max_seconds=1.0, **common, **(notifications_overrides or {}))),
    }
    auth_db = f"sqlite:///{tmp}/gateway.sqlite3"
    creds = await ensure_dev_credentials(tmp, AuthSettings(database_url=auth_db))
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(running_app(app))
                for name, app in apps.items()}
        gateway = gateway_app(
            GatewaySettings(citizen_services_url=urls["citizen-services"],
                            inclusion_url=urls["inclusion"],
                            notifications_url=urls["notifications"]),
            auth_settings=AuthSettings(database_url=auth_db, **{
                k.removeprefix("GATEWAY_").lower(): v for k, v in creds.env().items()}),
            limit_settings=limit_settings or LimitSettings(rate_limits_enabled=False))
        gateway_url = await stack.enter_async_context(running_app(gateway))
        yield Platform(gateway_url=gateway_url, service_urls=urls, credentials=creds.values,
                       issuer=creds.issuer, gateway=gateway, apps=apps)


@pytest.fixture
async def platform(tmp_path: Path, kafka_bootstrap: str, smtp_sink: SmtpSink,
                   service_db: Callable[[str], str]) -> AsyncIterator[Platform]:
    async with run_platform(tmp=tmp_path, kafka_bootstrap=kafka_bootstrap,
                            smtp_port=smtp_sink.port, database=service_db) as p:
        yield p


#: The subject of the email that confirms a new contact address (notifications).
CONFIRM_SUBJECT = "Confirm your email address"
_VERIFICATION_LINK = re.compile(r"(/api/v1/preferences/email-verification\?token=[\w-]+)")


async def set_confirmed_email(http: httpx.AsyncClient, headers: dict[str, str],
                              sink: SmtpSink, address: str, **preferences: Any
                              ) -> dict[str, Any]:
    """``PUT /api/v1/preferences`` with ``address`` (and ``preferences``) through the
    gateway, then confirm the address as its owner would: the one-time link emailed to it,
    POSTed. Returns the preferences after."""
    put = await http.put("/api/v1/preferences", headers=headers,
                         json={"email": address, **preferences})
    assert put.status_code == 200, put.text

    async def link() -> str | None:
        for message in sink.messages():
            if message["To"] == address and message["Subject"] == CONFIRM_SUBJECT:
                body = message.get_body(("plain",))
                found = _VERIFICATION_LINK.search(body.get_content()) if body else None
                if found:
                    return found.group(1)
        return None

    path = await eventually(link, timeout=30, message=f"no confirmation link for {address}")
    confirmed = await http.post(path)
    assert confirmed.status_code == 200, confirmed.text
    after = await http.get("/api/v1/preferences", headers=headers)
    assert after.json()["email"] == address, after.text
    return dict(after.json())
