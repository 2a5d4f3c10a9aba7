"""Gateway settings (environment prefix ``GATEWAY_``)."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    citizen_services_url: str = "http://127.0.0.1:8001"
    inclusion_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    connect_timeout_seconds: float = 2.0
    default_timeout_seconds: float = 30.0
    pool_size_per_upstream: int = 100
    otel_exporter_otlp_endpoint: str | None = None
