"""``.env.example``: generated from the settings classes, and fails when it drifts; every name in
it is one a settings class really reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mkinfra.envexample import (
    COMPONENTS,
    TARGET,
    Component,
    component_settings,
    load,
    main,
    render,
)


def test_env_example_is_up_to_date() -> None:
    assert TARGET.read_text() == render(), "run `python -m mkinfra.envexample`"


def test_check_fails_when_the_file_drifts(tmp_path: Path) -> None:
    copy = tmp_path / ".env.example"
    copy.write_text(render())
    assert main(["--check", "--output", str(copy)]) == 0
    copy.write_text(render().replace("#INCLUSION_PORT=8002\n", ""))
    assert main(["--check", "--output", str(copy)]) == 1
    out = subprocess.run(
        [sys.executable, "-m", "mkinfra.envexample", "--output", str(copy)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and copy.read_text() == render()


def test_every_component_and_secret_is_listed_without_its_dev_value() -> None:
    text = render()
    for name in (
        "#PLATFORM_IDENTITY_SECRET=\n",
        "#NOTIFICATIONS_UNSUBSCRIBE_SECRET=\n",
        "#KAFKA_BOOTSTRAP_SERVERS=",
        "#CITIZEN_SERVICES_DATABASE_URL=",
        "#INCLUSION_SEED_DATA=",
        "#NOTIFICATIONS_SMTP_HOST=",
        "#GATEWAY_JWT_JWKS_URL=",
        "#GATEWAY_LIMIT_DEFAULT=",
        "#GATEWAY_ENVIRONMENT=development",
    ):
        assert name in text, name
    assert "dev-only" not in text


def _other(value: object) -> str:
    """A value unlike ``value`` that still parses as its type, where that is easy."""
    if isinstance(value, bool):
        return str(not value).lower()
    if isinstance(value, int | float):
        return str(value + 1)
    return "sentinel-value"


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.title)
def test_every_listed_name_is_read_by_its_settings(
    component: Component, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each variable, set to another value, changes the component's settings or is refused by
    their validation: either way pydantic-settings reads that name (prefix and alias)."""
    classes = [load(path) for path in component.classes]
    baseline = [cls().model_dump() for cls in classes]
    settings = component_settings(component)
    assert len(settings) >= 10
    for setting in settings:
        for name in (setting.env, *setting.aliases):
            fields = {field: value for dump in baseline for field, value in dump.items()}
            guesses = {_other(v) for v in fields.values()} | {"sentinel-value"}
            read = False
            for guess in sorted(guesses):
                monkeypatch.setenv(name, guess)
                try:
                    read = [cls().model_dump() for cls in classes] != baseline
                except (ValidationError, ValueError):
                    read = True
                monkeypatch.delenv(name)
                if read:
                    break
            assert read, f"{name} is listed but no settings class of {component.title} reads it"
