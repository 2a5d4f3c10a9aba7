"""Settings every deployable shares (:class:`PlatformSettings`: the environment and its secret
rule, listening, logging, tracing, the identity secret) and every service shares
(:class:`ServiceSettings`: database, Kafka, relay, consumers); each subclasses with its own
environment prefix (the gateway's ``GatewaySettings`` subclasses :class:`PlatformSettings`).

``KAFKA_BOOTSTRAP_SERVERS`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` are read without a prefix
because they describe the shared environment; everything else is per service, e.g.
``CITIZEN_SERVICES_DATABASE_URL``. No settings object is created at import time.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.messaging.security import KafkaSecurity, SaslMechanism, SecurityProtocol

DEV_SECRET = "dev-only-identity-secret-change-me"  # noqa: S105 - refused outside development
#: The development identity issuer's ``iss`` (the gateway's ``gateway.auth.devissuer``): the
#: gateway and the front-ends refuse it outside development and test.
DEV_ISSUER = "http://127.0.0.1:8000/dev-issuer"

#: The only environments in which a secret may keep its development default. Any other
#: value (``production``, ``staging``, ``prod``, ``preprod``…) is production-like.
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "test"})
#: Secrets (the identity secret, notifications' unsubscribe secret…) are at least this long.
MIN_SECRET_BYTES = 32
#: …and not a short pattern repeated: at least this many different characters.
MIN_SECRET_DISTINCT = 10
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _environment(value: Any) -> str:
    text = str(value).strip().lower()
    if not _ENVIRONMENT.match(text):
        raise ValueError(
            "the environment is a name such as development, test, staging or production"
        )
    return text


#: ``development``, ``test``, ``staging``, ``production``… (lower-cased). Only
#: ``development`` and ``test`` are development-like: see :func:`is_production_like`.
Environment = Annotated[str, BeforeValidator(_environment)]


def is_production_like(environment: str) -> bool:
    """True unless the environment is explicitly ``development`` or ``test``: a deployment
    named anything else (``prod``, ``staging``, a typo) gets production's rules."""
    return environment not in DEVELOPMENT_ENVIRONMENTS


def check_secret(
    name: str, secret: SecretStr | str, *, dev_default: str | None, environment: str
) -> None:
    """The rule every platform secret follows (the services' and the gateway's settings):
    its development default only in development or test; any other value at least
    :data:`MIN_SECRET_BYTES` bytes and not a short repeated pattern. Raises ValueError
    naming the variable, never showing the value."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if dev_default is not None and value == dev_default:
        if is_production_like(environment):
            raise ValueError(
                f"{name} must be set: its development default is accepted only when the "
                f"environment is development or test (it is {environment!r})"
            )
        return
    if len(value.encode()) < MIN_SECRET_BYTES or len(set(value)) < MIN_SECRET_DISTINCT:
        raise ValueError(
            f"{name} must be at least {MIN_SECRET_BYTES} random bytes, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def development_only(name: str, wanted: bool | None, *, environment: str) -> bool:
    """A development convenience (a service's seed data): unset, it is on in development and
    test and off anywhere else; asked for anywhere else, it is refused (ValueError naming the
    variable)."""
    if wanted is None:
        return not is_production_like(environment)
    if wanted and is_production_like(environment):
        raise ValueError(
            f"{name} is accepted only when the environment is development or test "
            f"(it is {environment!r})"
        )
    return wanted


class PlatformSettings(BaseSettings):
    """What every deployable of the platform shares (the services' :class:`ServiceSettings`
    and the gateway's ``GatewaySettings``): its name, the environment and the rule for
    development secrets in it, where it listens and logs, tracing, and the identity secret.
    Subclasses set ``model_config = SettingsConfigDict(env_prefix=...)``."""

    #: hide_input_in_errors: a refused setting never echoes the secrets beside it.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    service_name: str = "service"
    #: ``development`` (default), ``test``, or any other name, which is production-like
    #: (development defaults refused): see :func:`is_production_like`.
    environment: Environment = "development"
    log_level: str = "INFO"
    #: The address to listen on (``<PREFIX>HOST``): loopback by default; ``0.0.0.0`` in a
    #: container.
    host: str = "127.0.0.1"
    port: int = 8080
    #: On SIGTERM: stop accepting, then wait at most this long for requests in flight
    #: before the shutdown (consumers, relay) runs (``<PREFIX>SHUTDOWN_GRACE_SECONDS``).
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
    )

    #: Shared secret the gateway signs identity assertions with (at least 32 bytes), its
    #: development default only in development or test.
    identity_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET),
        validation_alias=AliasChoices("PLATFORM_IDENTITY_SECRET", "identity_secret"),
    )

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Self:
        check_secret(
            "PLATFORM_IDENTITY_SECRET",
            self.identity_secret,
            dev_default=DEV_SECRET,
            environment=self.environment,
        )
        return self

    @property
    def production_like(self) -> bool:
        """Anything but ``development`` and ``test``: development defaults are refused."""
        return is_production_like(self.environment)


class ServiceSettings(PlatformSettings):
    """Base settings of a service. Subclasses set
    ``model_config = SettingsConfigDict(env_prefix=...)``."""

    model_config = SettingsConfigDict(
        extra="ignore", env_prefix="SERVICE_", hide_input_in_errors=True
    )

    #: SQLAlchemy URL; ``sqlite:///path`` (default, embedded) or ``postgresql://...``.
    database_url: str = "sqlite:///var/service/db.sqlite3"
    run_migrations: bool = True

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    #: How the Kafka clients connect (TLS, SASL): see :mod:`servicekit.messaging.security`.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
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

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Self:
        self.kafka_security  # noqa: B018 - raises ValueError on an incomplete combination
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The Kafka clients' TLS and SASL settings."""
        password = self.kafka_sasl_password
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password.get_secret_value() if password else None,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
        )

    @property
    def cloudevents_source(self) -> str:
        return f"urn:uk-gov-milton-keynes:{self.service_name}"
