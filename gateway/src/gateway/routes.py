"""The routing table: the one declarative list of what the gateway forwards where.

Longest prefix wins. Each route names its upstream, its time-out, whether idempotent
requests may be retried on a connection failure, its rate-limit class, how callers
authenticate on it and the largest request body it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.config import GatewaySettings

MiB = 1024 * 1024


class AuthMode(StrEnum):
    #: The gateway authenticates a bearer JWT or an API key (``X-API-Key``); a request with
    #: neither is anonymous and the service decides what anonymous callers may do.
    GATEWAY = "gateway"
    #: As GATEWAY, and Open311's ``api_key`` (query string or form field) is accepted.
    OPEN311 = "open311"
    #: ``Authorization`` is the upstream's business (GOV.UK Notify's JWT on /v2): passed
    #: through untouched, never interpreted by the gateway.
    UPSTREAM = "upstream"


@dataclass(frozen=True)
class Route:
    prefix: str
    upstream: str  # name of an upstream (see ``upstreams``)
    timeout_seconds: float = 30.0
    retry_idempotent: bool = True
    limit_class: str = "default"
    auth: AuthMode = AuthMode.GATEWAY
    max_body_bytes: int = 10 * MiB
    #: Public, read-only, anonymous data any web page may read: pre-flights are answered
    #: with ``Access-Control-Allow-Origin: *`` (GET/HEAD only) whatever the origin.
    public_read: bool = False


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str  # the first replica's
    #: every replica's base URL (``base_url`` alone when not given)
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.urls:
            object.__setattr__(self, "urls", (self.base_url,))


ROUTES: tuple[Route, ...] = (
    Route("/api/v1/services", "citizen-services", limit_class="catalogue"),
    Route("/api/v1/service-requests", "citizen-services"),
    Route("/open311/v2", "citizen-services", limit_class="open311", auth=AuthMode.OPEN311),
    Route("/hsds", "citizen-services", limit_class="catalogue", public_read=True),
    Route("/api/v1/programmes", "inclusion"),
    Route("/api/v1/venues", "inclusion"),
    Route("/api/v1/sessions", "inclusion"),
    Route("/api/v1/enrolments", "inclusion"),
    Route("/api/v1/participants", "inclusion"),
    Route("/api/v1/devices", "inclusion"),
    Route("/api/v1/vouchers", "inclusion"),
    Route("/api/v1/reports", "inclusion", timeout_seconds=120),
    Route("/api/v1/help-near-me", "inclusion"),
    Route("/api/v1/templates", "notifications"),
    Route("/api/v1/messages", "notifications"),  # sent messages: staff only
    Route("/api/v1/preferences", "notifications"),
    Route("/api/v1/webhook-subscriptions", "notifications"),
    Route("/api/v1/notify-services", "notifications", limit_class="admin"),
    Route("/api/v1/unsubscribe", "notifications"),
    Route("/api/v1/files", "notifications"),  # Notify files sent by email: public page
    Route("/api/v1/sms/inbound", "notifications"),  # the SMS provider's webhook (its token)
    Route("/v2", "notifications", limit_class="notify", auth=AuthMode.UPSTREAM),
)


def upstream_urls(value: str) -> tuple[str, ...]:
    """``GATEWAY_<SERVICE>_URL``: one base URL or a comma-separated list, one per replica."""
    return tuple(u.strip().rstrip("/") for u in value.split(",") if u.strip())


def upstreams(settings: GatewaySettings) -> dict[str, Upstream]:
    out = {}
    for name, value in (
        ("citizen-services", settings.citizen_services_url),
        ("inclusion", settings.inclusion_url),
        ("notifications", settings.notifications_url),
    ):
        urls = upstream_urls(value)
        out[name] = Upstream(name, urls[0], urls)
    return out


def match(path: str, routes: tuple[Route, ...] = ROUTES) -> Route | None:
    best: Route | None = None
    for route in routes:
        p = route.prefix
        if (
            path == p
            or path.startswith(p + "/")
            or path.startswith(p + ".")
            or path.startswith(p + "?")
        ) and (best is None or len(p) > len(best.prefix)):
            best = route
    return best


class Router:
    """:func:`match` for one routing table, with each prefix's forms made once and the
    table ordered longest prefix first (the gateway matches every request)."""

    __slots__ = ("_table",)

    def __init__(self, routes: tuple[Route, ...] = ROUTES) -> None:
        # sorted() is stable: of two prefixes of one length the first listed wins, as in
        # match()
        self._table = tuple(
            (r.prefix, (r.prefix + "/", r.prefix + ".", r.prefix + "?"), r)
            for r in sorted(routes, key=lambda r: -len(r.prefix))
        )

    def match(self, path: str) -> Route | None:
        for prefix, forms, route in self._table:
            if path == prefix or path.startswith(forms):
                return route
        return None
