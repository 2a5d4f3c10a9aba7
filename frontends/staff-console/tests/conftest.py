"""The platform (every service, the gateway and the console as processes, on real Kafka and
PostgreSQL) and the browsers, once per test module: fixtures from ``webkit.testing``. The
console's client at the dev provider offers every kind of test user, citizens included, so the
tests can show the console turning them away."""

import pytest

from webkit.testing import FrontendSpec, browser, html_checker, nojs_browser, platform_up

STAFF_CONSOLE = FrontendSpec(
    "staff-console",
    "staff_console",
    "STAFF_CONSOLE_",
    "staff-console",
    ("staff", "admin", "partner", "citizen"),
)


@pytest.fixture(scope="module")
def frontends() -> tuple[FrontendSpec, ...]:
    return (STAFF_CONSOLE,)


__all__ = ["browser", "frontends", "html_checker", "nojs_browser", "platform_up"]
