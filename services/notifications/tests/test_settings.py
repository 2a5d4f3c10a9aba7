"""Finding 6 of the security issue: the development secrets (the identity secret and the
unsubscribe secret) ran in ``staging`` or ``prod`` (only exactly ``production`` refused
them), so anyone could forge an unsubscribe link. Now any environment but development or
test refuses them, and every secret is at least 32 bytes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from notifications.config import DEV_UNSUBSCRIBE_SECRET, Settings
from notifications.domain.unsubscribe import InvalidToken, make_token, read_token

IDENTITY = "kV3q9-Zr8tLw2mXcY7bN4pHs6dJf1gUe0aQiToRx"  # tests only
UNSUBSCRIBE = "Pq7sW2eR9tY4uI1oA6sD3fG8hJ5kL0zXcVbNm"  # tests only


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PLATFORM_IDENTITY_SECRET",
        "NOTIFICATIONS_ENVIRONMENT",
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("environment", ["staging", "prod", "production"])
def test_the_dev_unsubscribe_secret_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="NOTIFICATIONS_UNSUBSCRIBE_SECRET"):
        Settings(environment=environment, identity_secret=IDENTITY)
    with pytest.raises(ValidationError, match="PLATFORM_IDENTITY_SECRET"):
        Settings(environment=environment, unsubscribe_secret=UNSUBSCRIBE)
    settings = Settings(
        environment=environment, identity_secret=IDENTITY, unsubscribe_secret=UNSUBSCRIBE
    )
    # A token forged with the development secret is refused by such a deployment.
    forged = make_token("citizen-1", "service-requests", DEV_UNSUBSCRIBE_SECRET)
    with pytest.raises(InvalidToken):
        read_token(forged, settings.unsubscribe_secret.get_secret_value())


def test_a_short_unsubscribe_secret_is_refused_and_not_echoed() -> None:
    with pytest.raises(ValidationError, match="at least 32") as refused:
        Settings(
            environment="staging", identity_secret=IDENTITY, unsubscribe_secret="too-short-secret"
        )
    assert "too-short-secret" not in str(refused.value)
    assert IDENTITY not in str(refused.value)


def test_the_defaults_still_work_in_development_and_test(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().unsubscribe_secret.get_secret_value() == DEV_UNSUBSCRIBE_SECRET
    monkeypatch.setenv("NOTIFICATIONS_ENVIRONMENT", "test")
    assert not Settings().production_like
    monkeypatch.setenv("NOTIFICATIONS_ENVIRONMENT", "Staging")
    with pytest.raises(ValidationError):
        Settings()
