"""The routing table: the one declarative list of what the gateway forwards where.

Longest prefix wins. Each route names its upstream, its time-out and whether idempotent
requests may be retried on a connection failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import GatewaySettings


@dataclass(frozen=True)
class Route:
    prefix: str
    upstream: str  # name of an upstream in GatewaySettings
    timeout_seconds: float = 30.0
    retry_idempotent: bool = True


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str


ROUTES: tuple[Route, ...] = (
    Route("/api/v1/services", "citizen-services"),
    Route("/api/v1/service-requests", "citizen-services"),
    Route("/open311/v2", "citizen-services"),
    Route("/hsds", "citizen-services"),
    Route("/api/v1/programmes", "inclusion"),
    Route("/api/v1/venues", "inclusion"),
    Route("/api/v1/sessions", "inclusion"),
    Route("/api/v1/enrolments", "inclusion"),
    Route("/api/v1/devices", "inclusion"),
    Route("/api/v1/templates", "notifications"),
    Route("/api/v1/webhook-subscriptions", "notifications"),
    Route("/v2", "notifications"),
)


def upstreams(settings: GatewaySettings) -> dict[str, Upstream]:
    return {
        "citizen-services": Upstream("citizen-services", settings.citizen_services_url),
        "inclusion": Upstream("inclusion", settings.inclusion_url),
        "notifications": Upstream("notifications", settings.notifications_url),
    }


def match(path: str, routes: tuple[Route, ...] = ROUTES) -> Route | None:
    best: Route | None = None
    for route in routes:
        p = route.prefix
        if (path == p or path.startswith(p + "/") or path.startswith(p + ".")
                or path.startswith(p + "?")) and (best is None or len(p) > len(best.prefix)):
            best = route
    return best
