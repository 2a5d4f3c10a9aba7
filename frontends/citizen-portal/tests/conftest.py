"""The platform (every service, the gateway and the portal as processes, on real Kafka and
PostgreSQL) and the browsers, once per test module: fixtures from ``webkit.testing``."""

from webkit.testing import browser, frontends, html_checker, nojs_browser, platform_up

__all__ = ["browser", "frontends", "html_checker", "nojs_browser", "platform_up"]
