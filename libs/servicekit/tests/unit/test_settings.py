"""``ServiceSettings``: the development identity secret is accepted only when the environment
is explicitly development or test; any other secret is at least 32 random-looking bytes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from servicekit.settings import DEV_SECRET, ServiceSettings, is_production_like

REAL_SECRET = "kV3q9-Zr8tLw2mXcY7bN4pHs6dJf1gUe0aQiToRx"  # 40 bytes, for tests only


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")
    service_name: str = "demo"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PLATFORM_IDENTITY_SECRET",
        "DEMO_ENVIRONMENT",
        "DEMO_IDENTITY_SECRET",
        "KAFKA_BOOTSTRAP_SERVERS",
        "DEMO_DATABASE_URL",
    ):
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
    monkeypatch.setenv("PLATFORM_IDENTITY_SECRET", REAL_SECRET)
    s = DemoSettings()
    assert s.environment == "production" and s.production_like
    assert s.identity_secret.get_secret_value() == REAL_SECRET
    assert REAL_SECRET not in repr(s)  # a SecretStr


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


@pytest.mark.parametrize("environment", ["staging", "prod", "Production", "preprod", "uat"])
def test_any_other_environment_is_production_like(environment: str) -> None:
    """The security issue's finding 6: only exactly ``production`` refused the dev secret."""
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        DemoSettings(environment=environment)
    s = DemoSettings(environment=environment, identity_secret=REAL_SECRET)
    assert s.production_like and s.environment == environment.lower()
    assert is_production_like(s.environment)


@pytest.mark.parametrize(
    "secret", ["short-secret", "a-long-random-production-secret", "ab" * 20, "x" * 64]
)
@pytest.mark.parametrize("environment", ["production", "development"])
def test_short_or_repetitive_secrets_are_refused(secret: str, environment: str) -> None:
    with pytest.raises(ValidationError, match="at least 32") as refused:
        DemoSettings(environment=environment, identity_secret=secret)
    assert secret not in str(refused.value)


@pytest.mark.parametrize("environment", ["", "prod env", "x" * 40, "production;"])
def test_malformed_environment_is_refused(environment: str) -> None:
    with pytest.raises(ValidationError):
        DemoSettings(environment=environment)
