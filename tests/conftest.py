"""Cross-service fixtures: the real services, wired to real Kafka, PostgreSQL and SMTP.

Two ways to run the platform:

* ``platform`` — every service and the gateway in this test process, each on its own real
  port (quick to start; lets a test reach into an app, e.g. to add a span exporter);
* ``platform_processes`` — each service and the gateway as its own process (``python -m
  <service>``), exactly as ``make run`` and a deployment run them. Tests of concurrency,
  faults or timing use this one: one event loop shared by four apps is not what any
  deployment does, and on a busy machine it turns one slow app into everyone's time-outs.

Both give a :class:`Platform`; ``Platform.databases`` has each service's database URL, so a
test can check state with its own connection (``Platform.database(name)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
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
from mkinfra._proc import tail, terminate_group
from mkinfra.smtp_sink import SmtpSink
from mkinfra.testing import free_ports
from notifications.config import Settings as NotificationsSettings
from notifications.main import create_app as notifications_app
from servicekit.db import Database
from servicekit.testing import eventually, running_app

#: The services, by name: (module, environment prefix).
SERVICES = {
    "citizen-services": ("citizen_services", "CITIZEN_SERVICES_"),
    "inclusion": ("inclusion", "INCLUSION_"),
    "notifications": ("notifications", "NOTIFICATIONS_"),
}


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
    return CitizenSettings(
        database_url=service_db("citizen-services"),
        kafka_bootstrap_servers=kafka_bootstrap,
        environment="test",
    )


@pytest.fixture
def notifications_settings(
    kafka_bootstrap: str, service_db: Callable[[str], str], smtp_sink: SmtpSink
) -> NotificationsSettings:
    return NotificationsSettings(
        database_url=service_db("notifications"),
        kafka_bootstrap_servers=kafka_bootstrap,
        environment="test",
        smtp_port=smtp_sink.port,
        staff_alert_email="digital-team@milton-keynes.example",
        consumer_backoff_initial_seconds=0.1,
        consumer_backoff_max_seconds=1.0,
    )


@dataclass
class Platform:
    """The three services and the gateway, running on real ports, with dev credentials."""

    gateway_url: str
    service_urls: dict[str, str]
    credentials: dict[str, str]
    issuer: DevIssuer
    gateway: Gateway | None
    apps: dict[str, Any]
    databases: dict[str, str] = field(default_factory=dict)

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials[name]}"}

    @asynccontextmanager
    async def database(self, name: str) -> AsyncIterator[Database]:
        """A connection pool of this test's own to service ``name``'s database."""
        db = Database(self.databases[name])
        try:
            yield db
        finally:
            await db.dispose()


@asynccontextmanager
async def run_platform(
    *,
    tmp: Path,
    kafka_bootstrap: str,
    smtp_port: int,
    database: Callable[[str], str],
    limit_settings: LimitSettings | None = None,
    staff_alert_email: str | None = "digital-team@milton-keynes.example",
    notifications_overrides: dict[str, Any] | None = None,
) -> AsyncIterator[Platform]:
    common = {"kafka_bootstrap_servers": kafka_bootstrap, "environment": "test"}
    databases = {name: database(name) for name in SERVICES}
    apps = {
        "citizen-services": citizen_app(
            CitizenSettings(database_url=databases["citizen-services"], **common)
        ),
        "inclusion": inclusion_app(
            InclusionSettings(database_url=databases["inclusion"], **common)
        ),
        "notifications": notifications_app(
            NotificationsSettings(
                database_url=databases["notifications"],
                smtp_port=smtp_port,
                staff_alert_email=staff_alert_email,
                consumer_backoff_initial_seconds=0.1,
                consumer_backoff_max_seconds=1.0,
                **common,
                **(notifications_overrides or {}),
            )
        ),
    }
    auth_db = f"sqlite:///{tmp}/gateway.sqlite3"
    creds = await ensure_dev_credentials(tmp, AuthSettings(database_url=auth_db))
    async with AsyncExitStack() as stack:
        urls = {
            name: await stack.enter_async_context(running_app(app)) for name, app in apps.items()
        }
        gateway = gateway_app(
            GatewaySettings(
                citizen_services_url=urls["citizen-services"],
                inclusion_url=urls["inclusion"],
                notifications_url=urls["notifications"],
            ),
            auth_settings=AuthSettings(
                database_url=auth_db,
                **{k.removeprefix("GATEWAY_").lower(): v for k, v in creds.env().items()},
            ),
            limit_settings=limit_settings or LimitSettings(rate_limits_enabled=False),
        )
        gateway_url = await stack.enter_async_context(running_app(gateway))
        yield Platform(
            gateway_url=gateway_url,
            service_urls=urls,
            credentials=creds.values,
            issuer=creds.issuer,
            gateway=gateway,
            apps=apps,
            databases=databases,
        )


@pytest.fixture
async def platform(
    tmp_path: Path, kafka_bootstrap: str, smtp_sink: SmtpSink, service_db: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with run_platform(
        tmp=tmp_path, kafka_bootstrap=kafka_bootstrap, smtp_port=smtp_sink.port, database=service_db
    ) as p:
        yield p


async def _wait_ready(
    url: str, procs: list[subprocess.Popen[bytes]], log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a process exited during start-up:\n{tail(log, 40)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s:\n{tail(log, 40)}")


@asynccontextmanager
async def run_platform_processes(
    *,
    tmp: Path,
    kafka_bootstrap: str,
    smtp_port: int,
    database: Callable[[str], str],
    workers: int = 1,
    gateway_env: dict[str, str] | None = None,
) -> AsyncIterator[Platform]:
    """Each service and the gateway as its own process (``workers`` processes each), on
    free loopback ports; logs in ``tmp/logs/``. Rate limits are off unless ``gateway_env``
    sets them."""
    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PYTHONUNBUFFERED": "1",
        "WEB_CONCURRENCY": str(workers),
    }
    databases = {name: database(name) for name in SERVICES}
    ports = dict(zip([*SERVICES, "gateway"], free_ports(len(SERVICES) + 1), strict=True))
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(module: str, env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", module],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    try:
        for name, (module, prefix) in SERVICES.items():
            env = {
                **base,
                f"{prefix}DATABASE_URL": databases[name],
                f"{prefix}PORT": str(ports[name]),
                f"{prefix}ENVIRONMENT": "test",
                f"{prefix}LOG_LEVEL": "WARNING",
            }
            if name == "notifications":
                env.update(
                    {
                        f"{prefix}SMTP_PORT": str(smtp_port),
                        f"{prefix}STAFF_ALERT_EMAIL": "digital-team@milton-keynes.example",
                        f"{prefix}CONSUMER_BACKOFF_INITIAL_SECONDS": "0.1",
                        f"{prefix}CONSUMER_BACKOFF_MAX_SECONDS": "1.0",
                    }
                )
            spawn(module, env, logs / f"{name}.log")
        urls = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
        for name in SERVICES:
            await _wait_ready(urls[name] + "/health/ready", procs, logs / f"{name}.log")
        auth_db = f"sqlite:///{tmp}/gateway.sqlite3"
        creds = await ensure_dev_credentials(tmp, AuthSettings(database_url=auth_db))
        env = {
            **base,
            **creds.env(),
            "GATEWAY_DATABASE_URL": auth_db,
            "GATEWAY_PORT": str(ports["gateway"]),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_RATE_LIMITS_ENABLED": "false",
            **{f"GATEWAY_{SERVICES[n][1]}URL": u for n, u in urls.items()},
            **(gateway_env or {}),
        }
        spawn("gateway", env, logs / "gateway.log")
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        await _wait_ready(gateway_url + "/openapi.json", procs, logs / "gateway.log")
        yield Platform(
            gateway_url=gateway_url,
            service_urls=urls,
            credentials=creds.values,
            issuer=creds.issuer,
            gateway=None,
            apps={},
            databases=databases,
        )
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(terminate_group, proc, 20)


@pytest.fixture
async def platform_processes(
    tmp_path: Path, kafka_bootstrap: str, smtp_sink: SmtpSink, service_db: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with run_platform_processes(
        tmp=tmp_path, kafka_bootstrap=kafka_bootstrap, smtp_port=smtp_sink.port, database=service_db
    ) as p:
        yield p


#: The subject of the email that confirms a new contact address (notifications).
CONFIRM_SUBJECT = "Confirm your email address"
_VERIFICATION_LINK = re.compile(r"(/api/v1/preferences/email-verification\?token=[\w-]+)")


async def set_confirmed_email(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    sink: SmtpSink,
    address: str,
    **preferences: Any,
) -> dict[str, Any]:
    """``PUT /api/v1/preferences`` with ``address`` (and ``preferences``) through the
    gateway, then confirm the address as its owner would: the one-time link emailed to it,
    POSTed. Returns the preferences after."""
    put = await http.put(
        "/api/v1/preferences", headers=headers, json={"email": address, **preferences}
    )
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
