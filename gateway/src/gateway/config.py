"""Gateway settings (environment prefix ``GATEWAY_``).

Authentication settings live in ``gateway.auth.settings.AuthSettings`` and rate limits in
``gateway.limits.LimitSettings`` (same prefix).
"""

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.settings import DEV_SECRET, Environment, check_secret, is_production_like


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore",
                                      hide_input_in_errors=True)

    service_name: str = "gateway"
    #: ``development`` (default), ``test``, or anything else, which is production-like
    #: (development defaults refused): the same rule as the services' (servicekit.settings).
    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    citizen_services_url: str = "http://127.0.0.1:8001"
    inclusion_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    connect_timeout_seconds: float = 2.0
    pool_size_per_upstream: int = 100
    #: How long an idle pooled upstream connection is kept. Must stay below the upstreams'
    #: own keep-alive (75 s for the platform's services; uvicorn's default is 5 s), or a
    #: request may be sent on a connection the upstream is closing.
    upstream_keepalive_seconds: float = 15.0
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
    )

    #: Shared with the services: signs the identity assertion (X-MK-Identity); at least 32
    #: bytes, its development default only in development or test.
    identity_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET),
        validation_alias=AliasChoices("PLATFORM_IDENTITY_SECRET", "identity_secret"),
    )
    identity_ttl_seconds: int = 60

    #: Browser origins allowed to call the API (CORS), e.g. the council's front-ends.
    cors_allow_origins: list[str] = Field(default_factory=lambda: [
        "http://127.0.0.1:3000", "http://localhost:3000"])
    cors_max_age_seconds: int = 600

    #: Circuit breaker per upstream.
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 10.0
    #: Retries of idempotent requests whose connection failed.
    retries: int = 2
    #: The largest request body, in bytes, every route accepts: when set it replaces each
    #: route's own ``max_body_bytes`` (10 MiB by default), e.g. for bulk uploads. The admin
    #: API keeps its own 64 KiB limit.
    max_body_bytes: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> "GatewaySettings":
        check_secret("PLATFORM_IDENTITY_SECRET", self.identity_secret, dev_default=DEV_SECRET,
                     environment=self.environment)
        return self

    @property
    def production_like(self) -> bool:
        return is_production_like(self.environment)
