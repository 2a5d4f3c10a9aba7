"""inclusion settings (environment prefix ``INCLUSION_``)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INCLUSION_", extra="ignore")

    service_name: str = "inclusion"
    port: int = 8002
    database_url: str = "sqlite:///var/inclusion/inclusion.sqlite3"
    #: Insert realistic MK programmes, venues and sessions when there is no programme yet.
    seed_data: bool = True
    #: Run the scheduled jobs (session reminders) in this instance, every N seconds.
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 60.0
