"""citizen-services settings (environment prefix ``CITIZEN_SERVICES_``)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITIZEN_SERVICES_", extra="ignore")

    service_name: str = "citizen-services"
    port: int = 8001
    database_url: str = "sqlite:///var/citizen-services/citizen-services.sqlite3"
    #: Seed the catalogue with Milton Keynes services when it is empty (first start).
    seed_data: bool = True
