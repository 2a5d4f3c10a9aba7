"""What a front-end's browser tests reuse (the citizen portal's now, the staff console's next):

- :func:`start_platform`: Kafka and PostgreSQL from the test session, and one process per
  service, the gateway (serving the dev OIDC provider) and each front-end, as ``make run``
  starts them; an SMTP sink for the mail;
- :func:`new_driver`: headless Debian Chromium through Selenium (JavaScript on or off);
- :func:`axe_violations`: axe-core's WCAG 2.2 A/AA rules run in the page;
- :class:`HtmlChecker`: every page's HTML kept, then checked by the Nu HTML Checker at once;
- :func:`page_weight`: the bytes a page and its assets take before any caching;
- :func:`sign_in`: through the dev provider's page, as a person would;
- :func:`page_replaced`: a wait condition for the next page after a click or submit.

The pytest fixtures at the end (``platform_up``, ``browser``, ``nojs_browser``,
``html_checker``) are module-scoped: one platform and one browser per test module. A front-end's
``conftest.py`` imports them and defines ``frontends`` (which front-ends to start).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from webkit import tools

LOCALHOST = "127.0.0.1"
#: The tags axe-core checks: WCAG 2.0, 2.1 and 2.2, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
SERVICES = {
    "citizen-services": ("citizen_services", "CITIZEN_SERVICES_"),
    "inclusion": ("inclusion", "INCLUSION_"),
    "notifications": ("notifications", "NOTIFICATIONS_"),
}


@dataclass(frozen=True)
class FrontendSpec:
    """A front-end to start: its module (``python -m <module>``), environment prefix, OIDC
    client id at the dev provider and the roles its test users have."""

    name: str
    module: str
    prefix: str
    client_id: str
    roles: tuple[str, ...]


CITIZEN_PORTAL = FrontendSpec(
    "citizen-portal", "citizen_portal", "CITIZEN_PORTAL_", "citizen-portal", ("citizen",)
)


@dataclass
class PlatformUp:
    gateway_url: str
    frontend_urls: dict[str, str]
    service_urls: dict[str, str]
    databases: dict[str, str]
    issuer_url: str
    issuer_dir: Path
    mail_dir: Path
    logs: Path
    mail: Any = None  # the SmtpSink
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def token(self, subject: str, *roles: str) -> str:
        """A bearer token from the dev issuer, e.g. for staff acting through the API."""
        from gateway.auth.devissuer import ensure_dev_issuer

        issuer = ensure_dev_issuer(self.issuer_dir)
        return issuer.mint(subject, roles, issuer=self.issuer_url)

    def log_tail(self, name: str, lines: int = 40) -> str:
        from mkinfra._proc import tail

        return tail(self.logs / f"{name}.log", lines)


def _free_ports(count: int) -> list[int]:
    from mkinfra.testing import free_ports

    return free_ports(count)


def _wait(url: str, procs: list[subprocess.Popen[bytes]], log: Path, timeout: float = 180) -> None:
    from mkinfra._proc import tail

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a process exited during start-up:\n{tail(log, 40)}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=5) as answer,  # noqa: S310 - loopback
        ):
            if answer.status == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s:\n{tail(log, 40)}")


@contextlib.contextmanager
def start_platform(
    *,
    tmp: Path,
    kafka_bootstrap: str,
    database: Callable[[str], str],
    smtp_port: int,
    mail_dir: Path,
    frontends: tuple[FrontendSpec, ...] = (CITIZEN_PORTAL,),
    extra_env: dict[str, str] | None = None,
) -> Iterator[PlatformUp]:
    """The whole platform as separate processes on free loopback ports (logs in
    ``tmp/logs/``), stopped (each process group) on exit."""
    from gateway.auth.devissuer import DEV_AUDIENCE, ensure_dev_issuer
    from mkinfra._proc import terminate_group

    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    names = [*SERVICES, "gateway", *(f.name for f in frontends)]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    url = {name: f"http://{LOCALHOST}:{port}" for name, port in ports.items()}
    issuer_url = url["gateway"] + "/dev-issuer"
    issuer = ensure_dev_issuer(tmp / "dev-issuer")
    base = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, module: str, env: dict[str, str]) -> None:
        with open(logs / f"{name}.log", "ab") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", module],
                    env={**base, **env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    databases = {name: database(name) for name in SERVICES}
    platform = PlatformUp(
        gateway_url=url["gateway"],
        frontend_urls={f.name: url[f.name] for f in frontends},
        service_urls={name: url[name] for name in SERVICES},
        databases=databases,
        issuer_url=issuer_url,
        issuer_dir=issuer.directory,
        mail_dir=mail_dir,
        logs=logs,
        procs=procs,
    )
    try:
        for name, (module, prefix) in SERVICES.items():
            env = {
                f"{prefix}DATABASE_URL": databases[name],
                f"{prefix}PORT": str(ports[name]),
                f"{prefix}ENVIRONMENT": "test",
                f"{prefix}LOG_LEVEL": "WARNING",
            }
            if name == "notifications":
                env.update(
                    {
                        f"{prefix}SMTP_PORT": str(smtp_port),
                        f"{prefix}PUBLIC_URL": url["gateway"],
                        f"{prefix}CONSUMER_BACKOFF_INITIAL_SECONDS": "0.1",
                        f"{prefix}CONSUMER_BACKOFF_MAX_SECONDS": "1.0",
                    }
                )
            spawn(name, module, env)
        for name in SERVICES:
            _wait(url[name] + "/health/ready", procs, logs / f"{name}.log")
        clients = {
            f.client_id: {
                "redirect_uris": [url[f.name] + "/auth/callback"],
                "secret": _client_secret(),
                "roles": list(f.roles),
            }
            for f in frontends
        }
        spawn(
            "gateway",
            "gateway",
            {
                "GATEWAY_PORT": str(ports["gateway"]),
                "GATEWAY_ENVIRONMENT": "test",
                "GATEWAY_LOG_LEVEL": "WARNING",
                "GATEWAY_DATABASE_URL": f"sqlite:///{tmp / 'gateway.sqlite3'}",
                "GATEWAY_RATE_LIMITS_ENABLED": "false",
                "GATEWAY_JWT_JWKS_FILE": str(issuer.jwks_path),
                "GATEWAY_JWT_ISSUER": issuer_url,
                "GATEWAY_JWT_AUDIENCE": DEV_AUDIENCE,
                "GATEWAY_DEV_OIDC_CLIENTS": json.dumps(clients),
                **{f"GATEWAY_{SERVICES[n][1]}URL": url[n] for n in SERVICES},
            },
        )
        _wait(issuer_url + "/.well-known/openid-configuration", procs, logs / "gateway.log")
        for f in frontends:
            spawn(
                f.name,
                f.module,
                {
                    f"{f.prefix}PORT": str(ports[f.name]),
                    f"{f.prefix}ENVIRONMENT": "test",
                    f"{f.prefix}LOG_LEVEL": "WARNING",
                    f"{f.prefix}PUBLIC_URL": url[f.name],
                    f"{f.prefix}GATEWAY_URL": url["gateway"],
                    f"{f.prefix}OIDC_ISSUER": issuer_url,
                    f"{f.prefix}OIDC_CLIENT_ID": f.client_id,
                },
            )
        for f in frontends:
            _wait(url[f.name] + "/health", procs, logs / f"{f.name}.log")
        yield platform
    finally:
        # all at once: each gets SIGTERM, and SIGKILL after 20 s if it is still there
        with ThreadPoolExecutor(max_workers=max(1, len(procs))) as pool:
            for proc in procs:
                pool.submit(terminate_group, proc, 20)


def _client_secret() -> str:
    from webkit.settings import DEV_CLIENT_SECRET

    return DEV_CLIENT_SECRET


# -- the browser ---------------------------------------------------------------------------
def new_driver(*, javascript: bool = True, width: int = 1280, height: int = 1000) -> Any:
    """Headless Chromium (Debian's) through its chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = tools.ensure_chromium(quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def page_replaced(element: Any) -> Callable[[Any], bool]:
    """A ``WebDriverWait`` condition: the page that held ``element`` has been replaced.

    Chromedriver reports a node of a replaced document either as stale or, while the new
    document loads, as "does not belong to the document" (a plain ``WebDriverException``):
    both mean the old page is gone."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.expected_conditions import staleness_of

    stale = staleness_of(element)

    def check(driver: Any) -> bool:
        try:
            return bool(stale(driver))
        except WebDriverException:
            return True

    return check


_AXE: str | None = None


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 A/AA violations on the page the driver shows (JavaScript on)."""
    global _AXE
    if _AXE is None:
        _AXE = tools.axe_script().read_text()
    driver.execute_script(_AXE)
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r)).catch(e => done({error: String(e)}));",
        WCAG_TAGS,
    )
    if "error" in result:
        raise RuntimeError(f"axe-core failed: {result['error']}")
    return [
        {
            "id": v["id"],
            "impact": v.get("impact"),
            "help": v["help"],
            "nodes": [n.get("target") for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def page_weight(driver: Any) -> int:
    """Bytes of the page and everything it loaded, as sent (compressed), whether or not the
    browser had them cached: the page's weight before caching."""
    total: int = driver.execute_script(
        "return performance.getEntriesByType('navigation')"
        ".concat(performance.getEntriesByType('resource'))"
        ".reduce((sum, e) => sum + (e.encodedBodySize || e.transferSize || 0), 0);"
    )
    return int(total)


def sign_in(driver: Any, frontend_url: str, subject: str, *, start: str = "/") -> None:
    """Sign in at the dev provider's page as ``subject`` (from ``start``)."""
    from selenium.webdriver.common.by import By

    driver.get(frontend_url + "/sign-in?next=" + start)
    from selenium.webdriver.support.expected_conditions import url_contains
    from selenium.webdriver.support.wait import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, f'input[name="subject"][value="{subject}"]').click()
    driver.find_element(By.ID, "dev-sign-in").click()
    WebDriverWait(driver, 60).until(url_contains(frontend_url + start.split("?")[0]))


#: ``make screenshots`` sets it: each checked page is saved there at each of ``WIDTHS``.
SCREENSHOTS_ENV = "WEBKIT_SCREENSHOTS"
WIDTHS = (375, 1280)


def save_screenshots(driver: Any, name: str, directory: Path | None = None) -> list[Path]:
    """The whole page at 375 px and 1280 px wide, as ``<name>-<width>.png``; nothing unless
    ``directory`` or ``$WEBKIT_SCREENSHOTS`` says where."""
    target = directory or (
        Path(os.environ[SCREENSHOTS_ENV]) if os.environ.get(SCREENSHOTS_ENV) else None
    )
    if target is None:
        return []
    target.mkdir(parents=True, exist_ok=True)
    saved = []
    size = driver.get_window_size()
    try:
        for width in WIDTHS:
            driver.set_window_size(width, 900)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, max(600, int(height) + 140))
            path = target / f"{_slug(name)}-{width}.png"
            driver.save_screenshot(str(path))
            saved.append(path)
    finally:
        driver.set_window_size(size["width"], size["height"])
    return saved


class HtmlChecker:
    """Keeps each page's HTML (``add``) and checks them all with the Nu HTML Checker in one
    run (``errors``): the JVM starts once per module."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.pages: dict[str, Path] = {}

    def add(self, name: str, html: str) -> None:
        path = self.directory / f"{len(self.pages):03d}-{_slug(name)}.html"
        path.write_text(html)
        self.pages[name] = path

    def errors(self) -> dict[str, list[str]]:
        if not self.pages:
            return {}
        jar = tools.vnu_jar()
        java = os.environ.get("JAVA", "java")
        run = subprocess.run(
            [
                java,
                "-Xss2m",
                "-jar",
                str(jar),
                "--format",
                "json",
                "--exit-zero-always",
                *map(str, self.pages.values()),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        report = json.loads(run.stderr or run.stdout or '{"messages": []}')
        by_file = {str(p.resolve()): n for n, p in self.pages.items()}
        found: dict[str, list[str]] = {}
        for message in report.get("messages", []):
            if message.get("type") != "error":
                continue
            source = message.get("url", "").removeprefix("file:")
            name = by_file.get(str(Path(source).resolve()), source)
            found.setdefault(name, []).append(
                f"line {message.get('lastLine')}: {message.get('message')}"
            )
        return found


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60] or "page"


# -- pytest fixtures (module-scoped: one platform and one browser per test module) -----------
@pytest.fixture(scope="module")
def frontends() -> tuple[FrontendSpec, ...]:
    return (CITIZEN_PORTAL,)


@pytest.fixture(scope="module")
def platform_up(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    postgres_admin_url: str,
    frontends: tuple[FrontendSpec, ...],
    request: pytest.FixtureRequest,
) -> Iterator[PlatformUp]:
    """The platform for the test module; a module's ``PLATFORM_ENV`` dict is added to every
    process's environment (e.g. a service setting only that module's tests need)."""
    import re
    import uuid

    from mkinfra.postgres import admin_url_create_database
    from mkinfra.smtp_sink import SmtpSink

    tmp = tmp_path_factory.mktemp("platform")

    def database(name: str) -> str:
        safe = re.sub(r"[^a-z0-9_]", "_", name.lower())
        return admin_url_create_database(postgres_admin_url, f"{safe}_{uuid.uuid4().hex[:12]}")

    sink = SmtpSink(tmp / "mail", port=_free_ports(1)[0]).start()
    try:
        with start_platform(
            tmp=tmp,
            kafka_bootstrap=kafka_bootstrap,
            database=database,
            smtp_port=sink.port,
            mail_dir=tmp / "mail",
            frontends=frontends,
            extra_env=dict(getattr(request.module, "PLATFORM_ENV", {})),
        ) as platform:
            platform.mail = sink
            yield platform
            # shown by pytest only when a test of the module failed
            for name in platform.frontend_urls:
                print(f"--- {name} log ---\n{platform.log_tail(name, 60)}")
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = new_driver(javascript=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def nojs_browser() -> Iterator[Any]:
    driver = new_driver(javascript=False)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def html_checker(tmp_path_factory: pytest.TempPathFactory) -> HtmlChecker:
    return HtmlChecker(tmp_path_factory.mktemp("html"))
