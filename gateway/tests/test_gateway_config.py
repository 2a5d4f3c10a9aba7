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
def test_the_dev_secret_is_refused_in_any_production_like_environment(
        environment: str) -> None:
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        GatewaySettings(environment=environment)
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        GatewaySettings(environment=environment, identity_secret=DEV_SECRET)
    settings = GatewaySettings(environment=environment, identity_secret=REAL_SECRET)
    assert settings.production_like


@pytest.mark.parametrize(("environment", "secret"), [
    ("development", None), ("test", None), ("staging", None), ("staging", REAL_SECRET),
    ("production", "short"), ("development", "0123456789" * 2), ("test", "ab" * 20),
    ("production", REAL_SECRET), ("prod env", REAL_SECRET),
])
def test_the_gateway_and_the_services_share_one_rule(environment: str,
                                                     secret: str | None) -> None:
    values = {"environment": environment} | ({"identity_secret": secret} if secret else {})

    def accepted(cls: type[GatewaySettings] | type[ServiceSettings]) -> bool:
        try:
            cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            assert secret is None or secret not in str(exc)
            return False
        return True

    assert accepted(GatewaySettings) == accepted(ServiceSettings)
