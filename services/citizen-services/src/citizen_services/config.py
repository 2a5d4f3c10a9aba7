"""citizen-services settings (environment prefix ``CITIZEN_SERVICES_``)."""

from typing import Self

from pydantic import model_validator
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

    @model_validator(mode="after")
    def _seed_data_only_in_development(self) -> Self:
        self.seed_data = development_only(
            "CITIZEN_SERVICES_SEED_DATA", self.seed_data, environment=self.environment
        )
        return self
