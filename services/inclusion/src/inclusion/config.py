"""inclusion settings (environment prefix ``INCLUSION_``)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INCLUSION_", extra="ignore")

    service_name: str = "inclusion"
    port: int = 8002
    database_url: str = "sqlite:///var/inclusion/inclusion.sqlite3"
