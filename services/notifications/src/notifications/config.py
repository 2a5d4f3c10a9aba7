"""notifications settings (environment prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AliasChoices, EmailStr, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings, check_secret

DEV_UNSUBSCRIBE_SECRET = "dev-only-unsubscribe-secret"  # noqa: S105 - development and test only
DEV_SMS_INBOUND_TOKEN = "dev-only-sms-inbound-token"  # noqa: S105 - development and test only


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    service_name: str = "notifications"
    port: int = 8003
    database_url: str = "sqlite:///var/notifications/notifications.sqlite3"

    # SMTP (make run: the dev sink on 127.0.0.1:1025 that stores var/mail/*.eml)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_use_tls: bool = False  # implicit TLS (port 465)
    smtp_start_tls: bool = False  # STARTTLS upgrade (port 587)
    smtp_validate_certs: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Milton Keynes City Council <no-reply@notifications.milton-keynes.example>"
    message_id_domain: str = "notifications.milton-keynes.example"

    #: Where "a service was published" alerts go (the digital services team's mailbox).
    staff_alert_email: EmailStr | None = "digital-services-team@milton-keynes.example"

    # SMS: "sink" writes var/sms/<id>.json (make run); "http" posts to a generic provider
    sms_provider: Literal["sink", "http", "notify"] = "sink"
    sms_sink_dir: str = "var/sms"
    sms_http_url: str | None = None
    sms_http_token: SecretStr | None = None
    #: "notify": GOV.UK Notify as the upstream (a template whose body is ``((body))``).
    sms_notify_api_key: SecretStr | None = None
    sms_notify_template_id: str | None = None
    sms_notify_base_url: str = "https://api.notifications.service.gov.uk"
    #: The default sender id of texts (at most 11 letters and digits).
    sms_sender: str = "MKCouncil"
    #: The token the SMS provider sends (``X-Provider-Token``, or ``Authorization: Bearer``
    #: when it calls the service directly) with inbound texts to ``/api/v1/sms/inbound``.
    #: Unset: the development token in development and test, the webhook off otherwise.
    sms_inbound_token: SecretStr | None = None

    # GOV.UK Notify API (/v2)
    #: The council's own Notify service, ensured at start-up: staff templates go to it unless
    #: they name another, and ``notifications.devcreds`` issues its keys for it.
    notify_default_service_id: uuid.UUID = uuid.UUID("334bab6d-91ce-5fce-a676-ba41d7586ed2")
    notify_default_service_name: str = "Milton Keynes City Council"
    #: Base of the ``uri`` links in /v2 answers (the gateway's public URL); default: the
    #: URL the request came in on.
    notify_public_url: str | None = None
    #: Notify's limit: requests a minute per service and key type (0 turns it off).
    notify_rate_limit_per_minute: int = 3000
    #: Redis shared by every process and replica for that limit (``NOTIFICATIONS_REDIS_URL``
    #: or ``REDIS_URL``); without it the limit holds per process.
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NOTIFICATIONS_REDIS_URL", "REDIS_URL", "redis_url"),
    )
    #: How far a token's ``iat`` may be from the server's clock (Notify: 30 seconds).
    notify_token_leeway_seconds: int = 30
    #: How long a service's API keys (and tokens verified with them) are kept in memory: a
    #: key revoked in the database is refused within this many seconds (at once by the
    #: process that revoked it through /api/v1/notify-services).
    notify_key_cache_seconds: float = 5.0
    #: Notifications a page of ``GET /v2/notifications`` (Notify: 250).
    notify_page_size: int = 250

    # One-click unsubscribe (RFC 8058) in event-driven emails
    #: The public URL of the gateway, where /api/v1/unsubscribe is.
    public_url: str = "http://127.0.0.1:8000"
    #: Signs unsubscribe links: at least 32 bytes; its default only in development or test.
    unsubscribe_secret: SecretStr = SecretStr(DEV_UNSUBSCRIBE_SECRET)

    # Privacy
    #: Days a message's recipient and content (personalisation lives only in it) are kept
    #: (GOV.UK Notify: 7); then they are blanked and only the status row stays.
    #: ``NOTIFICATIONS_NOTIFY_RETENTION_DAYS`` or ``NOTIFICATIONS_CONTENT_RETENTION_DAYS``.
    content_retention_days: float = Field(
        default=7.0,
        gt=0,
        validation_alias=AliasChoices(
            "NOTIFICATIONS_NOTIFY_RETENTION_DAYS",
            "NOTIFICATIONS_CONTENT_RETENTION_DAYS",
            "content_retention_days",
        ),
    )
    #: How often the retention purge runs (it sleeps in between).
    retention_purge_interval_seconds: float = 3600.0
    #: How long the one-time link that confirms a new contact email works.
    email_verification_hours: float = 24.0

    # Partner webhooks (Standard Webhooks)
    webhook_require_https: bool = True
    #: Networks endpoints may resolve into although not globally routable (CIDRs); inside
    #: them any port is allowed (elsewhere only 443). For tests and on-premises partners.
    webhook_allowed_networks: list[str] = []
    webhook_timeout_seconds: float = 15.0
    #: A subscription failing without a success for this long is disabled (spec: 5 days).
    webhook_disable_after_seconds: float = 5 * 24 * 3600
    #: Multiplies the retry schedule (tests shrink it).
    webhook_retry_scale: float = 1.0

    #: SMTP connections (or SMS requests) in use at once by a worker; connections are reused.
    delivery_concurrency: int = 8
    delivery_batch_size: int = 100
    #: After a commit wakes a delivery worker (email, SMS, webhooks), how long it waits for
    #: more before claiming: batches instead of a claim per API call.
    delivery_linger_seconds: float = 0.05
    delivery_max_attempts: int = 5
    delivery_idle_seconds: float = 1.0
    #: The outbox relay waits this long after a commit wakes it (servicekit's default: 0), so
    #: the status events of a stream of API calls go to Kafka in batches, not a pass each.
    relay_linger_seconds: float = 0.05
    #: A message left in "sending" this long (its worker died) is sent again, with the same
    #: Message-ID so receivers can drop the duplicate.
    sending_reclaim_seconds: float = 60.0

    @model_validator(mode="after")
    def _refuse_dev_unsubscribe_secret_in_production(self) -> Settings:
        check_secret(
            "NOTIFICATIONS_UNSUBSCRIBE_SECRET",
            self.unsubscribe_secret,
            dev_default=DEV_UNSUBSCRIBE_SECRET,
            environment=self.environment,
        )
        if self.sms_inbound_token is not None:
            check_secret(
                "NOTIFICATIONS_SMS_INBOUND_TOKEN",
                self.sms_inbound_token,
                dev_default=DEV_SMS_INBOUND_TOKEN,
                environment=self.environment,
            )
        return self

    def inbound_token(self) -> str | None:
        """The SMS provider's token for inbound texts (``None``: the webhook is off)."""
        if self.sms_inbound_token is not None:
            return self.sms_inbound_token.get_secret_value()
        return None if self.production_like else DEV_SMS_INBOUND_TOKEN
