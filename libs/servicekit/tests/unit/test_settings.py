"""``ServiceSettings``: the development identity secret is refused in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from servicekit.settings import DEV_SECRET, ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")
    service_name: str = "demo"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLATFORM_IDENTITY_SECRET", "DEMO_ENVIRONMENT", "DEMO_IDENTITY_SECRET",
                 "KAFKA_BOOTSTRAP_SERVERS", "DEMO_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_production_with_the_dev_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        DemoSettings(environment="production")
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        DemoSettings(environment="production", identity_secret=DEV_SECRET)


def test_production_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENVIRONMENT", "production")
    with pytest.raises(ValidationError):
        DemoSettings()
    monkeypatch.setenv("PLATFORM_IDENTITY_SECRET", DEV_SECRET)
    with pytest.raises(ValidationError):
        DemoSettings()


def test_production_with_a_real_secret_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENVIRONMENT", "production")
    monkeypatch.setenv("PLATFORM_IDENTITY_SECRET", "a-long-random-production-secret")
    s = DemoSettings()
    assert s.environment == "production"
    assert s.identity_secret.get_secret_value() == "a-long-random-production-secret"
    assert "a-long-random" not in repr(s)  # a SecretStr


@pytest.mark.parametrize("environment", ["development", "test"])
def test_dev_secret_is_fine_outside_production(environment: str) -> None:
    s = DemoSettings(environment=environment)
    assert s.identity_secret.get_secret_value() == DEV_SECRET


def test_prefixes_and_shared_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DATABASE_URL", "postgresql://u@h/demo")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    s = DemoSettings()
    assert s.database_url == "postgresql://u@h/demo"
    assert s.kafka_bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert s.cloudevents_source == "urn:uk-gov-milton-keynes:demo"


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError):
        DemoSettings(environment="staging")  # type: ignore[arg-type]
