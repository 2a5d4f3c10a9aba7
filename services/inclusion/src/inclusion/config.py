"""inclusion settings (environment prefix ``INCLUSION_``)."""

from typing import Self

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings, development_only


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INCLUSION_", extra="ignore")

    service_name: str = "inclusion"
    port: int = 8002
    database_url: str = "sqlite:///var/inclusion/inclusion.sqlite3"
    #: Insert realistic MK programmes, venues and sessions when there is no programme yet.
    #: Unset: on in development and test only; true is refused in any other environment.
    seed_data: bool | None = None
    #: Run the scheduled jobs (session reminders) in this instance, every N seconds.
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 60.0

    @model_validator(mode="after")
    def _seed_data_only_in_development(self) -> Self:
        self.seed_data = development_only(
            "INCLUSION_SEED_DATA", self.seed_data, environment=self.environment
        )
        return self
