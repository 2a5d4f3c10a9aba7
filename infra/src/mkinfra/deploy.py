"""What the platform ships as container images, and a reader of their Dockerfiles.

:data:`DEPLOYABLES` is the one list of images (``ghcr.io/mk-digital-platform/<name>:<version>``):
where each one's Dockerfile and pyproject are, the package ``python -m`` runs, its settings
class and port. The tests in ``infra/tests`` check the Dockerfiles, ``compose.yaml`` and the
versions against it; :mod:`mkinfra.envexample` reads the same settings classes.

There is no container engine on the development machines: :func:`parse_dockerfile` is a small
reader of the instructions the platform's Dockerfiles use (continuation lines, comments,
exec and shell forms), enough to check them without building.

``python -m mkinfra.deploy kafka-topics`` prints ``infra/compose/kafka/create-topics.sh``
(the compose stack's one-shot topic creation), generated from :mod:`contracts.topics`.
"""

from __future__ import annotations

import json
import shlex
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    Deployable("gateway", "gateway", "gateway", "gateway.config:GatewaySettings", "GATEWAY_", 8000),
)


# --------------------------------------------------------------------------- Dockerfiles


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
    if args != ["kafka-topics"]:
        print("usage: python -m mkinfra.deploy kafka-topics", file=sys.stderr)
        return 2
    sys.stdout.write(kafka_topics_script())
    return 0


if __name__ == "__main__":
    sys.exit(main())
