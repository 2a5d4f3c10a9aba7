"""Finding 6 of the security issue: the gateway's ``environment`` was a free string and only
exactly ``production`` refused the development identity secret. It now follows the same
rule as the services' settings (``servicekit.settings.check_secret``): the default only in
development or test, any other secret at least 32 bytes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings
from servicekit.settings import DEV_SECRET, ServiceSettings

REAL_SECRET = "kV3q9-Zr8tLw2mXcY7bN4pHs6dJf1gUe0aQiToRx"  # tests only


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLATFORM_IDENTITY_SECRET", "GATEWAY_ENVIRONMENT", "SERVICE_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("environment", ["staging", "prod", "PRODUCTION", "production"])
def test_the_dev_secret_is_refused_in_any_production_like_environment(environment: str) -> None:
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        GatewaySettings(environment=environment)
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        GatewaySettings(environment=environment, identity_secret=DEV_SECRET)
    settings = GatewaySettings(environment=environment, identity_secret=REAL_SECRET)
    assert settings.production_like


@pytest.mark.parametrize(
    ("environment", "secret"),
    [
        ("development", None),
        ("test", None),
        ("staging", None),
        ("staging", REAL_SECRET),
        ("production", "short"),
        ("development", "0123456789" * 2),
        ("test", "ab" * 20),
        ("production", REAL_SECRET),
        ("prod env", REAL_SECRET),
    ],
)
def test_the_gateway_and_the_services_share_one_rule(environment: str, secret: str | None) -> None:
    values = {"environment": environment} | ({"identity_secret": secret} if secret else {})

    def accepted(cls: type[GatewaySettings] | type[ServiceSettings]) -> bool:
        try:
            cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            assert secret is None or secret not in str(exc)
            return False
        return True

    assert accepted(GatewaySettings) == accepted(ServiceSettings)


def test_the_gateway_settings_are_the_platform_settings() -> None:
    """One place defines the environment and the production-secret rule for the gateway and
    the services alike: a rule fixed there cannot be missed here."""
    from servicekit.settings import PlatformSettings

    assert issubclass(GatewaySettings, PlatformSettings)
    assert issubclass(ServiceSettings, PlatformSettings)
    for name in ("environment", "identity_secret", "otel_exporter_otlp_endpoint"):
        assert name not in GatewaySettings.__annotations__  # inherited, not redefined


@pytest.mark.parametrize("environment", ["prod", "production", "Staging"])
def test_gateway_environment_prod_from_the_environment_needs_a_real_secret(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    """Regression (issue 12): ``GATEWAY_ENVIRONMENT=prod`` once passed as a free string that
    skipped the production-secret check. Production without a real secret refuses to start."""
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", environment)
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        GatewaySettings()
    monkeypatch.setenv("PLATFORM_IDENTITY_SECRET", DEV_SECRET)
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        GatewaySettings()
    monkeypatch.setenv("PLATFORM_IDENTITY_SECRET", REAL_SECRET)
    settings = GatewaySettings()
    assert settings.environment == environment.lower() and settings.production_like
