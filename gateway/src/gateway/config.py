"""Gateway settings (environment prefix ``GATEWAY_``).

What the gateway shares with the services (the environment and the rule for development
secrets in it, listening, logging, tracing, the identity secret) is defined once, in
:class:`servicekit.settings.PlatformSettings`. Authentication settings live in
``gateway.auth.settings.AuthSettings`` and rate limits in ``gateway.limits.LimitSettings``
(same prefix).
"""

import ipaddress
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from servicekit.settings import PlatformSettings


def _cidrs(value: Any) -> Any:
    """A comma-separated list (the environment) or a list."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _valid_cidrs(value: list[str]) -> list[str]:
    for cidr in value:
        ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one
    return value


CidrList = Annotated[list[str], NoDecode, BeforeValidator(_cidrs)]


class GatewaySettings(PlatformSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", extra="ignore", hide_input_in_errors=True
    )

    service_name: str = "gateway"
    port: int = 8000
    #: Each service's base URL, or a comma-separated list of them (one per replica: see
    #: ``gateway.balancer``).
    citizen_services_url: str = "http://127.0.0.1:8001"
    inclusion_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    #: Active health checks of a service with several replicas: each replica's
    #: ``/health/ready`` this often; one that does not answer 200 is out of rotation.
    health_check_interval_seconds: float = Field(default=2.0, gt=0)
    health_check_timeout_seconds: float = Field(default=2.0, gt=0)
    #: The TCP connect to an upstream (waiting for a pooled connection is not part of it).
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    #: Requests in flight to one upstream replica at once: its keep-alive connection pool
    #: (a service's bounded queue admits this many times its number of replicas).
    pool_size_per_upstream: int = Field(default=64, ge=1)
    #: How long an idle pooled upstream connection is kept. Must stay below the upstreams'
    #: own keep-alive (75 s for the platform's services; uvicorn's default is 5 s), or a
    #: request may be sent on a connection the upstream is closing.
    upstream_keepalive_seconds: float = 15.0
    #: How long the identity assertion (X-MK-Identity, signed with ``identity_secret``) is
    #: valid.
    identity_ttl_seconds: int = 60

    #: Browser origins allowed to call the API (CORS), e.g. the council's front-ends.
    cors_allow_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:3000", "http://localhost:3000"]
    )
    cors_max_age_seconds: int = 600

    #: Load balancers / reverse proxies in front of the gateway (CIDRs, comma-separated):
    #: only from these is ``X-Forwarded-For`` believed (``gateway.clientaddr``). Default none.
    trusted_proxies: CidrList = Field(default_factory=list)

    #: Who may read ``/metrics`` (socket peers, CIDRs, comma-separated; a request that came
    #: through a proxy never may): a Prometheus scraper's addresses. Default loopback.
    metrics_allow_from: CidrList = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    #: One JSON line per request on the ``gateway.access`` logger.
    access_log: bool = True

    #: Circuit breaker per upstream replica.
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 10.0
    #: Retries of idempotent requests whose connection failed.
    retries: int = 2
    #: The largest request body, in bytes, every route accepts: when set it replaces each
    #: route's own ``max_body_bytes`` (10 MiB by default), e.g. for bulk uploads. The admin
    #: API keeps its own 64 KiB limit.
    max_body_bytes: int | None = Field(default=None, gt=0)

    #: The bounded queue per upstream (``gateway.admission``): at most this many requests
    #: in flight and waiting for a connection together; past it, and for a request that
    #: waited ``upstream_queue_wait_seconds``, a 503 with ``Retry-After`` that does not count
    #: against the upstream's circuit breaker.
    upstream_queue_limit: int = Field(default=512, ge=1)
    upstream_queue_wait_seconds: float = Field(default=10.0, gt=0)
    #: Request bodies from clients: a body of known length up to ``buffer_body_bytes`` is
    #: read whole before a connection upstream is taken; a client that sends nothing for
    #: ``body_idle_timeout_seconds``, or has not finished after
    #: ``body_total_timeout_seconds``, is answered 408 (not the upstream's failure).
    buffer_body_bytes: int = Field(default=64 * 1024, ge=0)
    body_idle_timeout_seconds: float = Field(default=10.0, gt=0)
    body_total_timeout_seconds: float = Field(default=120.0, gt=0)
    #: How long the answer of ``/health`` (a check of every service) is reused.
    health_cache_seconds: float = Field(default=2.0, ge=0)

    @field_validator("citizen_services_url", "inclusion_url", "notifications_url")
    @classmethod
    def _upstream_urls(cls, value: str) -> str:
        urls = [u.strip() for u in value.split(",") if u.strip()]
        if not urls:
            raise ValueError("at least one upstream URL")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError("upstream URLs start with http:// or https://")
        if len({u.rstrip("/") for u in urls}) != len(urls):
            raise ValueError("an upstream URL is listed twice")
        return value

    @field_validator("trusted_proxies", "metrics_allow_from")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        return _valid_cidrs(value)

    @model_validator(mode="after")
    def _queue_holds_the_pool(self) -> "GatewaySettings":
        if self.upstream_queue_limit < self.pool_size_per_upstream:
            raise ValueError("upstream_queue_limit must be at least pool_size_per_upstream")
        return self
