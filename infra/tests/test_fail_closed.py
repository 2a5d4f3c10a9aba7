"""Configuration fails closed, one test per component: outside an explicit development
environment (``development`` or ``test``) no development secret, no seed data and no
development identity issuer are accepted, whichever way they are asked for; in development
the conveniences stay on by default."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from citizen_portal.config import PortalSettings
from citizen_services.config import Settings as CitizenServicesSettings
from gateway.auth.devissuer import DEV_AUDIENCE, DEV_ISSUER
from gateway.auth.settings import AuthSettings
from gateway.config import GatewaySettings
from inclusion.config import Settings as InclusionSettings
from notifications.config import DEV_UNSUBSCRIBE_SECRET
from notifications.config import Settings as NotificationsSettings
from servicekit.settings import DEV_SECRET
from webkit.settings import DEV_CLIENT_SECRET, DEV_SESSION_SECRET

PRODUCTION_LIKE = ["production", "staging", "prod", "Production", "qa"]


def strong() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(
            ("CITIZEN_SERVICES_", "INCLUSION_", "NOTIFICATIONS_", "GATEWAY_", "CITIZEN_PORTAL_")
        ):
            monkeypatch.delenv(name)
    monkeypatch.delenv("PLATFORM_IDENTITY_SECRET", raising=False)


def refused(cls: type, variable: str, **values: object) -> str:
    with pytest.raises(ValidationError) as caught:
        cls(**values)
    text = str(caught.value)
    assert variable in text, text
    for value in values.values():  # the refused value is never echoed
        if isinstance(value, str) and len(value) > 12:
            assert value not in text
    return text


@pytest.mark.parametrize("environment", PRODUCTION_LIKE)
@pytest.mark.parametrize(
    ("cls", "variable"),
    [
        (CitizenServicesSettings, "CITIZEN_SERVICES_SEED_DATA"),
        (InclusionSettings, "INCLUSION_SEED_DATA"),
    ],
    ids=["citizen-services", "inclusion"],
)
def test_services_with_seed_data_refuse_it_and_the_dev_secret_outside_development(
    cls: type, variable: str, environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the dev identity secret (its default) is refused
    refused(cls, "PLATFORM_IDENTITY_SECRET", environment=environment)
    refused(cls, "PLATFORM_IDENTITY_SECRET", environment=environment, identity_secret=DEV_SECRET)
    # seed data: off by default, refused when asked for, from the environment too
    settings = cls(environment=environment, identity_secret=strong())
    assert settings.seed_data is False
    refused(cls, variable, environment=environment, identity_secret=strong(), seed_data=True)
    monkeypatch.setenv(variable, "true")
    refused(cls, variable, environment=environment, identity_secret=strong())
    monkeypatch.setenv(variable, "false")
    assert cls(environment=environment, identity_secret=strong()).seed_data is False
    # in development and test they stay available, seeding on by default
    monkeypatch.delenv(variable)
    for development in ("development", "test"):
        assert cls(environment=development).seed_data is True
        assert cls(environment=development, seed_data=False).seed_data is False


@pytest.mark.parametrize("environment", PRODUCTION_LIKE)
def test_notifications_refuses_both_dev_secrets_outside_development(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused(
        NotificationsSettings,
        "PLATFORM_IDENTITY_SECRET",
        environment=environment,
        unsubscribe_secret=strong(),
    )
    refused(
        NotificationsSettings,
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET",
        environment=environment,
        identity_secret=strong(),
    )
    refused(
        NotificationsSettings,
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET",
        environment=environment,
        identity_secret=strong(),
        unsubscribe_secret=DEV_UNSUBSCRIBE_SECRET,
    )
    # a weak replacement is no better
    refused(
        NotificationsSettings,
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET",
        environment=environment,
        identity_secret=strong(),
        unsubscribe_secret="short",
    )
    monkeypatch.setenv("NOTIFICATIONS_ENVIRONMENT", environment)
    monkeypatch.setenv("PLATFORM_IDENTITY_SECRET", strong())
    monkeypatch.setenv("NOTIFICATIONS_UNSUBSCRIBE_SECRET", strong())
    assert NotificationsSettings().production_like
    monkeypatch.setenv("NOTIFICATIONS_ENVIRONMENT", "development")
    monkeypatch.setenv("NOTIFICATIONS_UNSUBSCRIBE_SECRET", DEV_UNSUBSCRIBE_SECRET)
    assert not NotificationsSettings().production_like


@pytest.mark.parametrize("environment", PRODUCTION_LIKE)
def test_gateway_refuses_the_dev_secret_and_the_dev_issuer_outside_development(
    environment: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    refused(GatewaySettings, "PLATFORM_IDENTITY_SECRET", environment=environment)
    assert GatewaySettings(environment=environment, identity_secret=strong()).production_like
    dev_issuer = {"jwt_issuer": DEV_ISSUER, "jwt_audience": DEV_AUDIENCE}
    refused(
        AuthSettings,
        "development issuer",
        environment=environment,
        jwt_jwks_url="https://idp.example/jwks",
        **dev_issuer,
    )
    refused(
        AuthSettings,
        "development issuer",
        environment=environment,
        jwt_jwks_file="var/dev-issuer/jwks.json",
        jwt_issuer="https://idp.example",
        jwt_audience="mk",
    )
    # the same from the environment, as a deployment sets it
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", environment)
    monkeypatch.setenv("GATEWAY_JWT_JWKS_FILE", "/srv/var/dev-issuer/jwks.json")
    monkeypatch.setenv("GATEWAY_JWT_ISSUER", DEV_ISSUER)
    monkeypatch.setenv("GATEWAY_JWT_AUDIENCE", DEV_AUDIENCE)
    with pytest.raises(ValidationError, match="development issuer"):
        AuthSettings()
    # the council's own provider is fine
    monkeypatch.setenv("GATEWAY_JWT_ISSUER", "https://login.milton-keynes.example")
    monkeypatch.delenv("GATEWAY_JWT_JWKS_FILE")
    monkeypatch.setenv("GATEWAY_JWT_JWKS_URL", "https://login.milton-keynes.example/jwks")
    assert AuthSettings().jwt_enabled
    # and make run's development set-up still works
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", "development")
    monkeypatch.delenv("GATEWAY_JWT_JWKS_URL")
    monkeypatch.setenv("GATEWAY_JWT_JWKS_FILE", "var/dev-issuer/jwks.json")
    monkeypatch.setenv("GATEWAY_JWT_ISSUER", DEV_ISSUER)
    assert AuthSettings().jwt_issuer == DEV_ISSUER


@pytest.mark.parametrize("environment", PRODUCTION_LIKE)
def test_citizen_portal_refuses_dev_secrets_and_the_dev_issuer_outside_development(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    council = {
        "identity_secret": strong(),
        "session_secret": strong(),
        "oidc_client_secret": strong(),
        "oidc_issuer": "https://login.milton-keynes.example",
    }
    assert PortalSettings(environment=environment, **council).production_like
    for field, dev_value, variable in (
        ("session_secret", DEV_SESSION_SECRET, "CITIZEN_PORTAL_SESSION_SECRET"),
        ("oidc_client_secret", DEV_CLIENT_SECRET, "CITIZEN_PORTAL_OIDC_CLIENT_SECRET"),
        ("oidc_issuer", DEV_ISSUER, "CITIZEN_PORTAL_OIDC_ISSUER"),
        ("identity_secret", DEV_SECRET, "PLATFORM_IDENTITY_SECRET"),
    ):
        refused(PortalSettings, variable, environment=environment, **{**council, field: dev_value})
        without = {k: v for k, v in council.items() if k != field}  # its default: the dev one
        refused(PortalSettings, variable, environment=environment, **without)
    # from the environment, as a deployment sets it
    monkeypatch.setenv("CITIZEN_PORTAL_ENVIRONMENT", environment)
    monkeypatch.setenv("CITIZEN_PORTAL_OIDC_ISSUER", DEV_ISSUER + "/")
    with pytest.raises(ValidationError, match="CITIZEN_PORTAL_OIDC_ISSUER"):
        PortalSettings(**{k: v for k, v in council.items() if k != "oidc_issuer"})
    # make run's development set-up still works with every default
    monkeypatch.setenv("CITIZEN_PORTAL_ENVIRONMENT", "development")
    assert PortalSettings().oidc_issuer == DEV_ISSUER + "/"
    monkeypatch.delenv("CITIZEN_PORTAL_OIDC_ISSUER")
    assert PortalSettings().oidc_issuer == DEV_ISSUER
