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
from mkinfra._proc import kill_group, tail, terminate_group
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
    #: Each service's processes (``run_platform_processes``).
    replicas: dict[str, list[Replica]] = field(default_factory=dict)

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


@dataclass
class Replica:
    """One process of a service (``python -m <module>``): :meth:`kill` is a crash (SIGKILL
    of its process group), :meth:`start` runs it again with the same port and environment."""

    name: str
    module: str
    url: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is not None:
            terminate_group(self.proc, timeout)

    async def wait_ready(self, timeout: float = 120) -> None:
        assert self.proc is not None
        await _wait_ready(self.url + "/health/ready", [self.proc], self.log, timeout)


@asynccontextmanager
async def run_platform_processes(
    *,
    tmp: Path,
    kafka_bootstrap: str,
    smtp_port: int,
    database: Callable[[str], str],
    workers: int = 1,
    gateway_env: dict[str, str] | None = None,
    replicas: int = 1,
    service_env: dict[str, dict[str, str]] | None = None,
) -> AsyncIterator[Platform]:
    """Each service and the gateway as its own process (``workers`` processes each), on
    free loopback ports; logs in ``tmp/logs/``. Rate limits are off unless ``gateway_env``
    sets them. ``replicas`` > 1 runs that many processes of each service (each its own port,
    all on the service's one database), the gateway balancing over them; ``Platform.replicas``
    has them (to kill and start again). ``service_env``: extra environment per service."""
    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PYTHONUNBUFFERED": "1",
        "WEB_CONCURRENCY": str(workers),
    }
    databases = {name: database(name) for name in SERVICES}
    free = iter(free_ports(len(SERVICES) * replicas + 1))
    gateway_port = next(free)
    running: dict[str, list[Replica]] = {}
    gateway_proc: subprocess.Popen[bytes] | None = None

    try:
        for name, (module, prefix) in SERVICES.items():
            env = {
                **base,
                f"{prefix}DATABASE_URL": databases[name],
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
            env.update((service_env or {}).get(name, {}))
            for i in range(replicas):
                port = next(free)
                suffix = f"-{i + 1}" if replicas > 1 else ""
                replica = Replica(
                    name=name,
                    module=module,
                    url=f"http://127.0.0.1:{port}",
                    env={**env, f"{prefix}PORT": str(port)},
                    log=logs / f"{name}{suffix}.log",
                )
                replica.start()
                running.setdefault(name, []).append(replica)
        for name in SERVICES:
            for replica in running[name]:
                await replica.wait_ready()
        urls = {name: running[name][0].url for name in SERVICES}
        auth_db = f"sqlite:///{tmp}/gateway.sqlite3"
        creds = await ensure_dev_credentials(tmp, AuthSettings(database_url=auth_db))
        env = {
            **base,
            **creds.env(),
            "GATEWAY_DATABASE_URL": auth_db,
            "GATEWAY_PORT": str(gateway_port),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_RATE_LIMITS_ENABLED": "false",
            **{
                f"GATEWAY_{SERVICES[n][1]}URL": ",".join(r.url for r in running[n])
                for n in SERVICES
            },
            **(gateway_env or {}),
        }
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        gateway = Replica("gateway", "gateway", gateway_url, env, logs / "gateway.log")
        gateway.start()
        gateway_proc = gateway.proc
        assert gateway_proc is not None
        await _wait_ready(gateway_url + "/openapi.json", [gateway_proc], logs / "gateway.log")
        yield Platform(
            gateway_url=gateway_url,
            service_urls=urls,
            credentials=creds.values,
            issuer=creds.issuer,
            gateway=None,
            apps={},
            databases=databases,
            replicas=running,
        )
    finally:
        everyone = [r.proc for rs in running.values() for r in rs if r.proc is not None]
        for proc in [gateway_proc, *reversed(everyone)]:
            if proc is not None:
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
