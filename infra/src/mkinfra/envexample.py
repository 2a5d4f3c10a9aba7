"""``.env.example``, generated from the settings classes of every component.

``python -m mkinfra.envexample`` rewrites ``.env.example`` at the repository root
(``--check`` only compares, exit 1 when it drifted; ``infra/tests/test_env_example.py`` does
the same in ``make test``). Each setting is walked from its pydantic-settings class: the
environment variable (prefix + field name, or its alias), the default, and the ``#:``
comment above the field (or the field's description).

Every setting line is commented out, showing its default, so a copied ``.env`` changes nothing
until a line is uncommented. Secrets never show their development defaults. The last section
lists the variables ``compose.yaml`` itself reads (database passwords and the like).
"""

from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import json
import re
import sys
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python
from pydantic_settings import BaseSettings

from mkinfra.deploy import ROOT

TARGET = ROOT / ".env.example"


@dataclass(frozen=True)
class Component:
    title: str
    about: str
    #: ``module:Class`` of each settings class the component reads.
    classes: tuple[str, ...]


COMPONENTS: tuple[Component, ...] = (
    Component(
        "citizen-services",
        "the catalogue of council services and citizens' service requests (Open311, HSDS)",
        ("citizen_services.config:Settings",),
    ),
    Component(
        "inclusion",
        "digital-inclusion programmes, sessions, enrolments, device loans",
        ("inclusion.config:Settings",),
    ),
    Component(
        "notifications",
        "email, SMS and webhooks; the GOV.UK Notify-compatible API",
        ("notifications.config:Settings",),
    ),
    Component(
        "gateway",
        "the one entry point: routing, authentication, rate limits",
        (
            "gateway.config:GatewaySettings",
            "gateway.auth.settings:AuthSettings",
            "gateway.limits:LimitSettings",
        ),
    ),
    Component(
        "citizen-portal",
        "the citizen portal: find a service, report a problem, get help getting online",
        ("citizen_portal.config:PortalSettings",),
    ),
    Component(
        "staff-console",
        "the staff console: the catalogue, the request queue, inclusion and notifications",
        ("staff_console.config:ConsoleSettings",),
    ),
)


@dataclass(frozen=True)
class ComposeVariable:
    name: str
    about: str
    required: bool
    default: str = ""


#: What ``compose.yaml`` interpolates that is not a platform setting.
COMPOSE_VARIABLES: tuple[ComposeVariable, ...] = (
    ComposeVariable(
        "MK_ENVIRONMENT",
        "the ENVIRONMENT of every platform container (development and test accept dev "
        "secrets and seed data; anything else refuses them)",
        False,
        "production",
    ),
    ComposeVariable("POSTGRES_PASSWORD", "the PostgreSQL superuser's password", True),
    ComposeVariable(
        "CITIZEN_SERVICES_DB_PASSWORD", "citizen-services' database role's password", True
    ),
    ComposeVariable("INCLUSION_DB_PASSWORD", "inclusion's database role's password", True),
    ComposeVariable("NOTIFICATIONS_DB_PASSWORD", "notifications' database role's password", True),
    ComposeVariable("GATEWAY_DB_PASSWORD", "the gateway's database role's password", True),
    ComposeVariable("GRAFANA_ADMIN_PASSWORD", "Grafana's admin password", True),
    ComposeVariable(
        "PUBLIC_URL",
        "the gateway's public URL (unsubscribe links, Notify's uri fields)",
        False,
        "http://localhost:8000",
    ),
)


@dataclass(frozen=True)
class Setting:
    """One environment variable of a settings class."""

    env: str
    #: other names the same setting is read from
    aliases: tuple[str, ...]
    default: str
    about: str
    secret: bool


def load(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, BaseSettings), path
    return cls


def _comments(cls: type) -> dict[str, str]:
    """``#:`` comment blocks above each field assignment of ``cls`` (and trailing ``# …``)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    block: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("#:"):
            block.append(text[2:].strip())
            continue
        match = re.match(r"^([a-z_][a-z0-9_]*)\s*:", text)
        if match and not text.startswith(("def ", "class ")):
            about = " ".join(block)
            trailing = re.search(r"\s#\s(?!noqa|type:)(.+)$", line)
            if trailing and not about:
                about = trailing.group(1).strip()
            out.setdefault(match.group(1), about)
        if not text.startswith("#"):
            block = []
    return out


def _env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.upper() == c]
        if names:
            return names
    elif isinstance(alias, str):
        return [alias.upper()]
    prefix = str(cls.model_config.get("env_prefix") or "")
    return [f"{prefix}{name}".upper()]


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list | tuple | set | frozenset | dict):
        # models inside (a dict of client settings…) as JSON; secrets in them stay masked
        return json.dumps(to_jsonable_python(value))
    return str(value)


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def _choices(annotation: Any) -> list[str]:
    """The values of a ``Literal`` (inside an ``Optional`` too)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    for arg in typing.get_args(annotation):
        found = _choices(arg)
        if found:
            return found
    return []


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def settings_of(cls: type[BaseSettings]) -> Iterator[Setting]:
    """Every setting of ``cls``, in declaration order (base classes' first)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's comment wins, an empty one does not
        if isinstance(klass, type) and issubclass(klass, BaseSettings):
            for name, about in _comments(klass).items():
                if about or name not in comments:
                    comments[name] = about
    for name, field in cls.model_fields.items():
        names = _env_names(cls, name, field)
        about = _plain(comments.get(name) or field.description or _ABOUT.get(name, ""))
        choices = _choices(field.annotation)
        if choices:
            about = f"{about} One of: {', '.join(choices)}.".strip()
        secret = _is_secret(field.annotation)
        yield Setting(
            env=names[0],
            aliases=tuple(names[1:]),
            default="" if secret else _render(_default(field)),
            about=about,
            secret=secret,
        )


def component_settings(component: Component) -> list[Setting]:
    seen: set[str] = set()
    out: list[Setting] = []
    for path in component.classes:
        for setting in settings_of(load(path)):
            if setting.env not in seen:
                seen.add(setting.env)
                out.append(setting)
    return out


def all_env_names() -> set[str]:
    """Every environment variable any component reads (aliases included)."""
    names: set[str] = set()
    for component in COMPONENTS:
        for s in component_settings(component):
            names.add(s.env)
            names.update(s.aliases)
    return names


#: What the settings classes leave undocumented, by field name (a ``#:`` comment on the field
#: wins over these).
_ABOUT = {
    "service_name": "The component's name in logs, traces and event sources.",
    "log_level": "DEBUG, INFO, WARNING or ERROR (JSON log lines on stdout).",
    "host": "The address to listen on (the images set 0.0.0.0).",
    "port": "The port to listen on.",
    "run_migrations": "Apply the database migrations at start-up; false where a migration job "
    "runs `python -m <component> migrate` first.",
    "otel_exporter_otlp_endpoint": "Export traces over OTLP/HTTP to this collector "
    "(e.g. http://otel-collector:4318); unset: no export.",
    "kafka_bootstrap_servers": "The Kafka cluster (host:port, comma-separated).",
    "relay_batch_size": "Outbox rows the relay publishes in one pass.",
    "consumer_max_attempts": "Attempts of a failing event before it goes to the topic's DLQ.",
    "consumer_backoff_initial_seconds": "The first retry's wait; it doubles per attempt.",
    "consumer_backoff_max_seconds": "The longest wait between retries.",
    "scheduler_interval_seconds": "How often the scheduled jobs run.",
    "sms_sink_dir": "Where the sink SMS provider writes messages (development).",
    "redis_url": "Redis for rate limits shared by every gateway replica; unset: per process.",
}


def _plain(text: str) -> str:
    """reStructuredText roles and literals as plain text."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _wrap(text: str, width: int = 96) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines


def _entry(setting: Setting, readers: str | None = None) -> list[str]:
    notes = []
    if setting.about:
        notes.append(setting.about)
    if setting.aliases:
        notes.append(f"(Also read as {', '.join(setting.aliases)}.)")
    if setting.secret:
        notes.append("Secret (never shown here).")
    if readers:
        notes.append(f"Read by {readers}.")
    lines = [f"# {line}" for line in _wrap(" ".join(notes))] if notes else []
    lines.append(f"#{setting.env}={setting.default}")
    return lines


def render() -> str:
    """The whole ``.env.example``."""
    out = [
        "# Every setting of the Milton Keynes digital platform, generated from the settings",
        "# classes by `python -m mkinfra.envexample` (do not edit: infra/tests/test_env_example.py",
        "# fails when this file drifts). Each line is commented out and shows the default.",
        "#",
        "# `docker compose` reads this file as .env (cp .env.example .env): fill in the compose",
        "# section at the end, and uncomment any setting to change it in every platform container.",
        "# Outside an explicit development environment (<PREFIX>ENVIRONMENT=development or test)",
        "# the development secrets, the seed data and the development identity issuer are refused.",
        "",
    ]
    shared: dict[str, tuple[Setting, list[str]]] = {}
    per_component: list[tuple[Component, list[Setting]]] = []
    for component in COMPONENTS:
        own: list[Setting] = []
        prefixes = tuple(
            str(load(path).model_config.get("env_prefix") or "") for path in component.classes
        )
        for s in component_settings(component):
            if any(prefix and s.env.startswith(prefix) for prefix in prefixes):
                own.append(s)
            else:
                shared.setdefault(s.env, (s, []))[1].append(component.title)
        per_component.append((component, own))
    out += ["# ===== shared: read without a prefix ==========================================", ""]
    for setting, readers in shared.values():
        out += [*_entry(setting, ", ".join(readers)), ""]
    for component, own in per_component:
        title = f"# ===== {component.title}: {component.about} "
        out += [title + "=" * max(3, 92 - len(title)), ""]
        for setting in own:
            out += [*_entry(setting), ""]
    out += [
        "# ===== compose.yaml: read by `docker compose` only ==============================",
        "# Required ones are uncommented and empty: compose refuses to start until they are set.",
        "",
    ]
    for variable in COMPOSE_VARIABLES:
        out += [f"# {line}" for line in _wrap(variable.about)]
        out.append(
            f"{variable.name}=" if variable.required else f"#{variable.name}={variable.default}"
        )
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mkinfra.envexample", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if .env.example drifted")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date: run `python -m mkinfra.envexample`",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
