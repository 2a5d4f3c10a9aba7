"""Settings every service shares; each service subclasses with its own env prefix.

``KAFKA_BOOTSTRAP_SERVERS`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` are read without a prefix
because they describe the shared environment; everything else is per service, e.g.
``CITIZEN_SERVICES_DATABASE_URL``. No settings object is created at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-identity-secret-change-me"  # noqa: S105 - refused outside development


class ServiceSettings(BaseSettings):
    """Base settings. Subclasses set ``model_config = SettingsConfigDict(env_prefix=...)``."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="SERVICE_")

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8080

    #: SQLAlchemy URL; ``sqlite:///path`` (default, embedded) or ``postgresql://...``.
    database_url: str = "sqlite:///var/service/db.sqlite3"
    run_migrations: bool = True

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    #: Turn the outbox relay and consumers off (HTTP-only unit tests).
    messaging_enabled: bool = True
    relay_batch_size: int = 500
    #: The relay wakes on every commit; this is only the fallback poll for other writers.
    relay_idle_seconds: float = 1.0
    #: After a commit wakes the relay, how long it waits for more before publishing (0: at
    #: once). Fewer, larger passes when every request commits; events wait that much longer.
    relay_linger_seconds: float = 0.0
    consumer_max_attempts: int = 5
    consumer_backoff_initial_seconds: float = 0.2
    consumer_backoff_max_seconds: float = 10.0

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
    )

    #: Shared secret the gateway signs identity assertions with (issue: gateway).
    identity_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET),
        validation_alias=AliasChoices("PLATFORM_IDENTITY_SECRET", "identity_secret"),
    )

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> ServiceSettings:
        secret = self.identity_secret.get_secret_value()
        if self.environment == "production" and secret == DEV_SECRET:
            raise ValueError("PLATFORM_IDENTITY_SECRET must be set outside development")
        return self

    @property
    def cloudevents_source(self) -> str:
        return f"urn:uk-gov-milton-keynes:{self.service_name}"
