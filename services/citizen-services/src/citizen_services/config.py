"""citizen-services settings (environment prefix ``CITIZEN_SERVICES_``)."""

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings, development_only


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITIZEN_SERVICES_", extra="ignore")

    service_name: str = "citizen-services"
    port: int = 8001
    database_url: str = "sqlite:///var/citizen-services/citizen-services.sqlite3"
    #: Seed the catalogue with Milton Keynes services when it is empty (first start). Unset: on in
    #: development and test only; true is refused in any other environment.
    seed_data: bool | None = None
    #: Import jobs (``application/imports.py``): run them in this process; rows staged per
    #: transaction; a pause after each batch (0: none); a running job whose heartbeat is
    #: older than the stale time is taken for dead and claimed again, up to max attempts;
    #: how often an idle worker looks for jobs queued by other replicas.
    import_worker: bool = True
    import_batch_size: int = Field(default=50, ge=1, le=5000)
    import_batch_pause_seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    import_stale_seconds: float = Field(default=60.0, gt=0.0)
    import_max_attempts: int = Field(default=3, ge=1)
    import_idle_seconds: float = Field(default=5.0, gt=0.0)

    @model_validator(mode="after")
    def _seed_data_only_in_development(self) -> Self:
        self.seed_data = development_only(
            "CITIZEN_SERVICES_SEED_DATA", self.seed_data, environment=self.environment
        )
        return self
