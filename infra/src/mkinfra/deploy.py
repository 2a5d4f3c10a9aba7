"""What the platform ships as container images, and a reader of their Dockerfiles.

:data:`DEPLOYABLES` is the one list of images (``ghcr.io/mk-digital-platform/<name>:<version>``):
where each one's Dockerfile and pyproject are, the package ``python -m`` runs, its settings
class and port. The tests in ``infra/tests`` check the Dockerfiles, ``compose.yaml`` and the
versions against it; :mod:`mkinfra.envexample` reads the same settings classes.

There is no container engine on the development machines: :func:`parse_dockerfile` is a small
reader of the instructions the platform's Dockerfiles use (continuation lines, comments,
exec and shell forms), enough to check them without building.

``python -m mkinfra.deploy dockerfiles`` writes every deployable's Dockerfile (from
:func:`render_dockerfile`: the workspace's members and each image's own dependency closure,
so a new workspace member is one command away); ``python -m mkinfra.deploy kafka-topics``
prints ``infra/compose/kafka/create-topics.sh`` (the compose stack's one-shot topic
creation), generated from :mod:`contracts.topics`.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.topics import TOPICS

ROOT = Path(__file__).resolve().parents[3]
REGISTRY = "ghcr.io/mk-digital-platform"


@dataclass(frozen=True)
class Deployable:
    """One image: ``folder`` holds its Dockerfile and pyproject.toml."""

    name: str
    folder: str
    package: str
    #: ``module:Class`` of its settings (pydantic-settings).
    settings: str
    env_prefix: str
    port: int
    #: What the image's HEALTHCHECK asks for, and the answers that mean "alive".
    health: str = "/health/live"
    health_statuses: tuple[int, ...] = (200,)
    #: Serves Prometheus metrics at /metrics (compose's Prometheus scrapes it).
    metrics: bool = True
    #: A front-end: GOV.UK Frontend's assets are fetched into the image at build time
    #: (``python -m webkit.assets``, with npm from the Node.js image).
    govuk_frontend: bool = False

    @property
    def dockerfile(self) -> Path:
        return ROOT / self.folder / "Dockerfile"

    @property
    def version(self) -> str:
        data = tomllib.loads((ROOT / self.folder / "pyproject.toml").read_text())
        return str(data["project"]["version"])

    @property
    def image(self) -> str:
        return f"{REGISTRY}/{self.name}:{self.version}"


DEPLOYABLES: tuple[Deployable, ...] = (
    Deployable(
        "citizen-services",
        "services/citizen-services",
        "citizen_services",
        "citizen_services.config:Settings",
        "CITIZEN_SERVICES_",
        8001,
    ),
    Deployable(
        "inclusion",
        "services/inclusion",
        "inclusion",
        "inclusion.config:Settings",
        "INCLUSION_",
        8002,
    ),
    Deployable(
        "notifications",
        "services/notifications",
        "notifications",
        "notifications.config:Settings",
        "NOTIFICATIONS_",
        8003,
    ),
    # /health/live: the gateway process itself (its /health asks every service)
    Deployable(
        "gateway",
        "gateway",
        "gateway",
        "gateway.config:GatewaySettings",
        "GATEWAY_",
        8000,
    ),
    Deployable(
        "citizen-portal",
        "frontends/citizen-portal",
        "citizen_portal",
        "citizen_portal.config:PortalSettings",
        "CITIZEN_PORTAL_",
        8010,
        health="/health",
        metrics=False,
        govuk_frontend=True,
    ),
    Deployable(
        "staff-console",
        "frontends/staff-console",
        "staff_console",
        "staff_console.config:ConsoleSettings",
        "STAFF_CONSOLE_",
        8011,
        health="/health",
        metrics=False,
        govuk_frontend=True,
    ),
)


# --------------------------------------------------------------------------- Dockerfiles

#: The base of every image, pinned by tag and by the digest of that tag's multi-platform index.
BASE_IMAGE = (
    "python:3.11.14-slim-bookworm"
    "@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d"
)
UV_VERSION = "0.13.10"
#: npm for the front-ends' build stage (only npm and node are copied from it).
NODE_IMAGE = "node:22.12.0-bookworm-slim"
#: The images' user and group (numeric: Kubernetes' runAsNonRoot checks it without /etc/passwd).
APP_UID = 10001


def _project(folder: str) -> dict[str, Any]:
    project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
    assert isinstance(project, dict)
    return project


def workspace_members() -> dict[str, str]:
    """Project name -> folder of every member of the uv workspace."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = root["tool"]["uv"]["workspace"]["members"]
    return {str(_project(folder)["name"]): folder for folder in folders}


def workspace_closure(folder: str) -> list[str]:
    """``folder`` and the workspace members it depends on, directly or not (in workspace
    order): the ``src/`` folders an image of it needs."""
    members = workspace_members()
    wanted: set[str] = set()
    todo = [folder]
    while todo:
        current = todo.pop()
        if current in wanted:
            continue
        wanted.add(current)
        for requirement in _project(current).get("dependencies", []):
            name = re.split(r"[\s<>=!~;\[]", str(requirement), maxsplit=1)[0]
            if name in members:
                todo.append(members[name])
    return [f for f in members.values() if f in wanted]


def render_dockerfile(d: Deployable) -> str:
    """The Dockerfile of a deployable (``python -m mkinfra.deploy dockerfiles`` writes them)."""
    project = _project(d.folder)
    description = str(project["description"]).rstrip(".")
    version = str(project["version"])
    members = "\n".join(f"COPY {m}/pyproject.toml {m}/" for m in workspace_members().values())
    sources = "\n".join(f"COPY {m}/src {m}/src" for m in workspace_closure(d.folder))
    if d.health_statuses == (200,):
        alive = "c.getresponse().status != 200"
        note = f"# Health: GET {d.health} must answer 200 (the process serves)."
    else:
        alive = f"c.getresponse().status not in {d.health_statuses}"
        codes = " or ".join(str(s) for s in d.health_statuses)
        note = (
            f"# Health: GET {d.health} answering {codes} means the process serves (a service "
            "behind it\n# being down is no reason to restart it)."
        )
    node_stage = assets = ""
    if d.govuk_frontend:
        node_stage = f"""\
# --- npm, for GOV.UK Frontend's assets in the build stage only -----------------------------
FROM {NODE_IMAGE} AS node

"""
        assets = """\
# GOV.UK Frontend's assets (pinned in webkit.assets), fetched with npm into the installed
# package by webkit's own code, as `make` does; npm stays in this stage.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
    && /opt/venv/bin/python -m webkit.assets
"""
    build_header = "# --- build: uv resolves the locked dependencies into /opt/venv " + "-" * 28
    check = (
        f"import os, http.client as h; c = h.HTTPConnection('127.0.0.1', "
        f"int(os.environ['{d.env_prefix}PORT']), timeout=4); c.request('GET', '{d.health}'); "
        f"raise SystemExit({alive})"
    )
    return f"""\
# {d.name}: {description}.
# Generated by `python -m mkinfra.deploy dockerfiles` from mkinfra.deploy.DEPLOYABLES and the
# workspace (do not edit: infra/tests/test_docker.py fails when it drifts). Build from the
# repository root, the uv workspace (docs/deploy-containers.md):
#   docker build -f {d.folder}/Dockerfile -t {REGISTRY}/{d.name}:{version} .
# Base: Debian 12 slim with CPython, pinned by tag and by the digest of that tag's
# multi-platform index (update both together, in mkinfra.deploy.BASE_IMAGE).

{node_stage}{build_header}
FROM {BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    UV_COMPILE_BYTECODE=1 \\
    UV_LINK_MODE=copy \\
    UV_NO_CACHE=1 \\
    UV_PYTHON_DOWNLOADS=never \\
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv=={UV_VERSION}
WORKDIR /src
# Every workspace member's pyproject.toml (uv reads the whole workspace), then the locked
# third-party dependencies alone: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
{members}
RUN uv sync --frozen --no-dev --no-install-workspace --package {d.name}
# The workspace packages this image runs, installed into the venv (not as links to /src).
{sources}
RUN uv sync --frozen --no-dev --no-editable --package {d.name}
{assets}
# --- runtime: the venv on the same base; no uv, no compiler, no sources -------------------
FROM {BASE_IMAGE}
LABEL org.opencontainers.image.title="{d.name}" \\
      org.opencontainers.image.description="{description}" \\
      org.opencontainers.image.version="{version}" \\
      org.opencontainers.image.licenses="MIT" \\
      org.opencontainers.image.vendor="Milton Keynes digital platform contributors"
RUN groupadd --system --gid {APP_UID} app \\
    && useradd --system --uid {APP_UID} --gid {APP_UID} --home-dir /app --no-create-home \\
       --shell /usr/sbin/nologin app \\
    && mkdir -p /app/var \\
    && chown {APP_UID}:{APP_UID} /app/var
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    {d.env_prefix}HOST=0.0.0.0 \\
    {d.env_prefix}PORT={d.port}
WORKDIR /app
USER {APP_UID}:{APP_UID}
EXPOSE {d.port}
{note}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "{check}"]
ENTRYPOINT ["python", "-m", "{d.package}"]
"""


@dataclass
class Instruction:
    """One instruction: ``cmd`` upper-cased, ``args`` the rest of its (joined) line."""

    cmd: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form RUN/CMD/ENTRYPOINT (after HEALTHCHECK's options)."""
        text = self.args
        if self.cmd == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1].strip() if " CMD " in f" {text}" else ""
        if not text.startswith("["):
            return None
        value = json.loads(text)
        return [str(v) for v in value]

    def words(self) -> list[str]:
        return shlex.split(self.args)


@dataclass
class Stage:
    """A ``FROM`` and the instructions under it."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, cmd: str) -> list[Instruction]:
        return [i for i in self.instructions if i.cmd == cmd]

    def env(self) -> dict[str, str]:
        """``ENV`` values (``KEY=VALUE`` form)."""
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            for word in ins.words():
                key, _, value = word.partition("=")
                out[key] = value
        return out

    def labels(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("LABEL"):
            for word in ins.words():
                key, _, value = word.partition("=")
                out[key] = value
        return out


def parse_dockerfile(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, each with its instructions (comments dropped, continued
    lines joined)."""
    stages: list[Stage] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        cmd, _, args = text.partition(" ")
        ins = Instruction(cmd.upper(), args.strip(), start)
        if ins.cmd == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(ins)
    return stages


def copy_sources(ins: Instruction) -> list[str]:
    """The sources of a COPY from the build context (none for ``--from=``)."""
    words = [w for w in ins.words()]
    if any(w.startswith("--from=") for w in words):
        return []
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


# --------------------------------------------------------------------------- compose topics


def kafka_topics_script() -> str:
    """``infra/compose/kafka/create-topics.sh``: every topic of :mod:`contracts.topics` and its
    ``.dlq`` twin, created if missing (run once by compose's ``kafka-topics`` service)."""
    from mkinfra.kafka import topic_specs

    lines = [
        "#!/bin/sh",
        "# Generated by `python -m mkinfra.deploy kafka-topics` from contracts/topics.py:",
        "# do not edit (infra/tests/test_compose.py fails when it drifts).",
        "# Creates every topic of the platform and its dead-letter twin if missing.",
        "set -eu",
        'BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"',
        'REPLICATION="${KAFKA_REPLICATION_FACTOR:-1}"',
        "create() {",
        '  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create'
        " --if-not-exists \\",
        '    --topic "$1" --partitions "$2" --replication-factor "$REPLICATION"'
        ' --config "retention.ms=$3"',
        "}",
    ]
    lines += [f"create {name} {parts} {ret}" for name, parts, ret in topic_specs(TOPICS)]
    lines.append('echo "topics ready"')
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["kafka-topics"]:
        sys.stdout.write(kafka_topics_script())
        return 0
    if args == ["dockerfiles"]:
        for d in DEPLOYABLES:
            d.dockerfile.write_text(render_dockerfile(d))
            print(f"wrote {d.dockerfile.relative_to(ROOT)}")
        return 0
    print("usage: python -m mkinfra.deploy kafka-topics | dockerfiles", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
