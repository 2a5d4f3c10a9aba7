"""notifications settings (environment prefix ``NOTIFICATIONS_``)."""

from pydantic import EmailStr, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


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

    delivery_concurrency: int = 8
    delivery_batch_size: int = 100
    delivery_max_attempts: int = 5
    delivery_idle_seconds: float = 1.0
    #: A message left in "sending" this long (its worker died) is sent again, with the same
    #: Message-ID so receivers can drop the duplicate.
    sending_reclaim_seconds: float = 60.0
