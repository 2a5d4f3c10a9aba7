"""The platform's topics on an existing cluster, from configuration: partitions,
replication, ``min.insync.replicas`` and retention per topic, applied idempotently.

Defaults come from :mod:`contracts.topics` (partitions and retention of every topic and its
``.dlq`` twin); a TOML file (``infra/kafka/topics.toml`` is the production starting point)
sets the replication defaults and overrides any topic::

    [defaults]
    replication_factor = 3
    min_insync_replicas = 2

    [topics."inclusion.enrolment.v1"]
    partitions = 6
    retention_ms = 1209600000

:func:`plan_topics` compares that with the cluster and lists the changes: create a topic,
add partitions, set a config. Lowering a topic's partitions is refused (Kafka cannot, and
it would break per-key order); a different replication factor of an existing topic is
reported but not changed (that is a partition reassignment, an operator's decision).
:func:`apply_plan` carries the plan out; running it again finds nothing to do.

CLI: ``python -m mkinfra.kafka ensure-topics [--config FILE] [--dry-run]``.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contracts.topics import TOPICS, Topic

#: the configs this tool manages on each topic
MANAGED_CONFIGS = ("retention.ms", "min.insync.replicas")
_TOPIC_KEYS = {"partitions", "replication_factor", "min_insync_replicas", "retention_ms"}
_DEFAULT_KEYS = {"replication_factor", "min_insync_replicas"}
_TOPIC_ALREADY_EXISTS = 36
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source of a topic's own setting


class TopicConfigError(ValueError):
    """The topic configuration file is wrong (unknown topic or key, bad value)."""


@dataclass(frozen=True)
class TopicSpec:
    """What one topic should be."""

    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int

    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(self.min_insync_replicas),
        }


def default_specs(
    topics: Sequence[Topic] = TOPICS, *, replication_factor: int = 3, min_insync_replicas: int = 2
) -> list[TopicSpec]:
    """Every registry topic and its ``.dlq`` twin, as :mod:`contracts.topics` defines them."""
    specs: list[TopicSpec] = []
    for t in topics:
        specs.append(
            TopicSpec(t.name, t.partitions, replication_factor, min_insync_replicas, t.retention_ms)
        )
        specs.append(
            TopicSpec(t.dlq, 1, replication_factor, min_insync_replicas, t.dlq_retention_ms)
        )
    return specs


def load_specs(
    config: Path | Mapping[str, Any] | None,
    topics: Sequence[Topic] = TOPICS,
    *,
    brokers: int | None = None,
) -> list[TopicSpec]:
    """The wanted topics: :func:`default_specs` with a TOML file's (or mapping's) defaults
    and per-topic overrides. Without a file, replication is 3 (or the number of ``brokers``
    when fewer) and ``min.insync.replicas`` one less (at least 1)."""
    if isinstance(config, Path):
        try:
            data: Mapping[str, Any] = tomllib.loads(config.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TopicConfigError(f"cannot read {config}: {exc}") from exc
    else:
        data = config or {}
    unknown_sections = set(data) - {"defaults", "topics"}
    if unknown_sections:
        raise TopicConfigError(f"unknown sections: {', '.join(sorted(unknown_sections))}")
    defaults = dict(data.get("defaults", {}))
    _check_keys("[defaults]", defaults, _DEFAULT_KEYS)
    rf = _positive("replication_factor", defaults.get("replication_factor", 3))
    if config is None and brokers is not None:
        rf = min(rf, brokers)
    isr = _positive("min_insync_replicas", defaults.get("min_insync_replicas", max(1, rf - 1)))
    specs = {
        s.name: s for s in default_specs(topics, replication_factor=rf, min_insync_replicas=isr)
    }
    for name, overrides in dict(data.get("topics", {})).items():
        if name not in specs:
            raise TopicConfigError(f"[topics.{name!r}] is not a topic of the registry")
        _check_keys(f"[topics.{name!r}]", overrides, _TOPIC_KEYS)
        values: dict[str, Any] = {k: _positive(k, v) for k, v in dict(overrides).items()}
        specs[name] = replace(specs[name], **values)
    for spec in specs.values():
        if spec.min_insync_replicas > spec.replication_factor:
            raise TopicConfigError(
                f"{spec.name}: min_insync_replicas {spec.min_insync_replicas} is more than "
                f"its replication_factor {spec.replication_factor} (no write could succeed)"
            )
    return list(specs.values())


def _check_keys(where: str, values: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(values) - allowed
    if unknown:
        raise TopicConfigError(
            f"{where}: unknown keys {', '.join(sorted(unknown))} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _positive(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TopicConfigError(f"{key} must be a positive whole number, not {value!r}")
    return value


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Change:
    """One line of the plan. ``kind``: ``create``, ``add-partitions``, ``set-config``,
    ``refused`` (lowering partitions) or ``not-changed`` (replication factor)."""

    kind: str
    topic: str
    detail: str
    spec: TopicSpec | None = None
    configs: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind:<15} {self.topic}: {self.detail}"


@dataclass(frozen=True)
class Plan:
    changes: list[Change]

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "refused"]

    @property
    def actions(self) -> list[Change]:
        return [c for c in self.changes if c.kind in ("create", "add-partitions", "set-config")]

    def describe(self) -> str:
        if not self.changes:
            return "nothing to change: every topic is as configured"
        return "\n".join(str(c) for c in self.changes)


async def plan_topics(admin: Any, specs: Sequence[TopicSpec]) -> Plan:
    """Compare ``specs`` with the cluster ``admin`` (a started ``AIOKafkaAdminClient``)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    existing = set(await admin.list_topics())
    present = [s for s in specs if s.name in existing]
    described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in present])}
    current = (
        await _topic_configs(admin, [s.name for s in present], ConfigResource, ConfigResourceType)
        if present
        else {}
    )
    changes: list[Change] = []
    for spec in specs:
        if spec.name not in existing:
            changes.append(
                Change(
                    "create",
                    spec.name,
                    f"{spec.partitions} partitions, replication {spec.replication_factor}, "
                    f"min.insync.replicas {spec.min_insync_replicas}, "
                    f"retention.ms {spec.retention_ms}",
                    spec=spec,
                )
            )
            continue
        partitions = described[spec.name]["partitions"]
        count = len(partitions)
        if spec.partitions < count:
            changes.append(
                Change(
                    "refused",
                    spec.name,
                    f"has {count} partitions, configured {spec.partitions}: Kafka cannot "
                    "lower a topic's partitions (recreate it, or configure at least "
                    f"{count})",
                )
            )
        elif spec.partitions > count:
            changes.append(
                Change(
                    "add-partitions",
                    spec.name,
                    f"{count} -> {spec.partitions} partitions (keys move to other "
                    "partitions: per-key order holds only for records written after)",
                    spec=spec,
                )
            )
        replication = min((len(p["replicas"]) for p in partitions), default=0)
        if replication != spec.replication_factor:
            changes.append(
                Change(
                    "not-changed",
                    spec.name,
                    f"replication factor is {replication}, configured "
                    f"{spec.replication_factor}: change it with a partition reassignment "
                    "(kafka-reassign-partitions), not this tool",
                )
            )
        have = current.get(spec.name, {})
        differs = {k: v for k, v in spec.configs().items() if have.get(k) != v}
        if differs:
            detail = ", ".join(f"{k} {have.get(k, 'default')} -> {v}" for k, v in differs.items())
            merged = {**{k: v for k, v in have.items() if v is not None}, **spec.configs()}
            changes.append(Change("set-config", spec.name, detail, spec=spec, configs=merged))
    return Plan(changes)


async def _topic_configs(
    admin: Any, names: Sequence[str], resource: Any, resource_type: Any
) -> dict[str, dict[str, str]]:
    """Each topic's own (dynamic) configs; the managed ones also when they are defaults."""
    responses = await admin.describe_configs(
        [resource(resource_type.TOPIC, name, None) for name in names]
    )
    out: dict[str, dict[str, str]] = {}
    for response in responses:
        for error, message, _type, name, entries in response.resources:
            if error:
                from aiokafka.errors import for_code

                raise for_code(error)(f"describing {name!r}: {message}")
            own: dict[str, str] = {}
            for entry in entries:
                key, value, _read_only, source = entry[0], entry[1], entry[2], entry[3]
                if source == _DYNAMIC_TOPIC_CONFIG or key in MANAGED_CONFIGS:
                    own[key] = value
            out[name] = own
    return out


async def apply_plan(admin: Any, plan: Plan) -> list[str]:
    """Carry out ``plan`` (refusing it whole if it has a refused change); the lines done."""
    from aiokafka.admin import NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import for_code

    if plan.refused:
        raise TopicConfigError("not applied: " + "; ".join(str(c) for c in plan.refused))
    done: list[str] = []
    creates = [c.spec for c in plan.actions if c.kind == "create" and c.spec]
    if creates:
        response = await admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    topic_configs=s.configs(),
                )
                for s in creates
            ]
        )
        for name, code, *rest in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise for_code(code)(f"creating topic {name!r}: {rest[0] if rest else ''}")
        done += [f"created {s.name}" for s in creates]
    grow = {
        c.topic: NewPartitions(total_count=c.spec.partitions)
        for c in plan.actions
        if c.kind == "add-partitions" and c.spec
    }
    if grow:
        await admin.create_partitions(grow)
        done += [f"partitions of {name} -> {p.total_count}" for name, p in grow.items()]
    configs = [c for c in plan.actions if c.kind == "set-config"]
    if configs:
        # AlterConfigs replaces a topic's own configs whole: the plan merged them
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, c.topic, dict(c.configs)) for c in configs]
        )
        for response in responses:
            for error, message, _type, name in response.resources:
                if error:
                    raise for_code(error)(f"altering {name!r}: {message}")
        done += [f"configs of {c.topic}: {c.detail}" for c in configs]
    return done


async def ensure_configured_topics(
    bootstrap_servers: str,
    specs: Sequence[TopicSpec],
    *,
    dry_run: bool = False,
    client_options: Mapping[str, Any] | None = None,
    out: Any = None,
) -> Plan:
    """Print the plan (to ``out``, a callable taking a line), then apply it unless
    ``dry_run``; returns the plan. Raises :class:`TopicConfigError` when it is refused."""
    from aiokafka.admin import AIOKafkaAdminClient

    say = out or print
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=30000, **(client_options or {})
    )
    await admin.start()
    try:
        plan = await plan_topics(admin, specs)
        say(plan.describe())
        if dry_run or (not plan.actions and not plan.refused):
            return plan
        for line in await apply_plan(admin, plan):
            say(f"done: {line}")
        # what was applied reaches every broker's metadata a moment later: wait for it, so
        # that whatever runs next (a service, this tool again) sees the topics as planned
        changed = {c.topic for c in plan.actions}
        deadline = time.monotonic() + 60
        while any(c.topic in changed for c in (await plan_topics(admin, specs)).actions):
            if time.monotonic() > deadline:
                raise TopicConfigError("the changes did not show in the cluster within 60 s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    if any(c.kind == "create" for c in plan.actions):
        from mkinfra.kafka import wait_for_topics

        await wait_for_topics(
            bootstrap_servers,
            [c.topic for c in plan.actions if c.kind == "create"],
            **(client_options or {}),
        )
    return plan


async def count_brokers(bootstrap_servers: str, client_options: Mapping[str, Any] | None) -> int:
    """How many brokers the cluster has (for the replication default without a file)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=30000, **(client_options or {})
    )
    await admin.start()
    try:
        return len((await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()


def client_options_from(
    *,
    security_protocol: str = "PLAINTEXT",
    sasl_mechanism: str | None = None,
    sasl_username: str | None = None,
    sasl_password: str | None = None,
    ssl_cafile: str | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> dict[str, Any]:
    """aiokafka keyword arguments for the CLI's admin client (the same meaning as the
    services' ``<PREFIX>KAFKA_*`` settings)."""
    import ssl

    if security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": security_protocol}
    if security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=ssl_cafile)
        if ssl_certfile and ssl_keyfile:
            context.load_cert_chain(ssl_certfile, ssl_keyfile)
        options["ssl_context"] = context
    if security_protocol.startswith("SASL_"):
        if not (sasl_mechanism and sasl_username and sasl_password):
            raise TopicConfigError(
                f"{security_protocol} needs a SASL mechanism, user name and password "
                "(KAFKA_SASL_PASSWORD)"
            )
        options.update(
            sasl_mechanism=sasl_mechanism,
            sasl_plain_username=sasl_username,
            sasl_plain_password=sasl_password,
        )
    return options
