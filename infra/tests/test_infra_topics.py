"""Topics from configuration on a real broker: a plan, idempotent apply, no lowering."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import Topic
from mkinfra.kafka import SecureKafka, main
from mkinfra.topics import TopicConfigError, ensure_configured_topics, load_specs

pytestmark = [pytest.mark.kafka]


def _registry() -> list[Topic]:
    run = uuid.uuid4().hex[:10]
    return [Topic(name=f"test-{run}.thing.v1", description="a test topic", partitions=2)]


async def _state(bootstrap: str, name: str) -> tuple[int, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([name])
        configs = await admin.describe_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    name,
                    {"retention.ms": None, "min.insync.replicas": None, "cleanup.policy": None},
                )
            ]
        )
        entries = dict(e[:2] for e in configs[0].resources[0][4])
        return len(described[0]["partitions"]), entries
    finally:
        await admin.close()


async def test_plan_then_apply_is_idempotent_and_raises_partitions(kafka_bootstrap: str) -> None:
    registry = _registry()
    name = registry[0].name
    base = {"defaults": {"replication_factor": 1, "min_insync_replicas": 1}}
    specs = load_specs(base, registry)
    lines: list[str] = []

    plan = await ensure_configured_topics(kafka_bootstrap, specs, out=lines.append)
    assert [(c.kind, c.topic) for c in plan.changes] == [
        ("create", name),
        ("create", f"{name}.dlq"),
    ]
    assert any("2 partitions" in line for line in lines)
    assert (await _state(kafka_bootstrap, name))[0] == 2

    again = await ensure_configured_topics(kafka_bootstrap, specs, out=lines.append)
    assert again.changes == []
    assert lines[-1] == "nothing to change: every topic is as configured"

    # an operator's own setting on the topic survives our config changes
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    name,
                    {
                        "retention.ms": str(registry[0].retention_ms),
                        "min.insync.replicas": "1",
                        "cleanup.policy": "compact,delete",
                    },
                )
            ]
        )
    finally:
        await admin.close()

    grown = load_specs(
        {**base, "topics": {name: {"partitions": 5, "retention_ms": 3_600_000}}}, registry
    )
    plan = await ensure_configured_topics(kafka_bootstrap, grown, out=lines.append)
    assert sorted(c.kind for c in plan.changes) == ["add-partitions", "set-config"]
    partitions, configs = await _state(kafka_bootstrap, name)
    assert partitions == 5
    assert configs["retention.ms"] == "3600000"
    assert configs["cleanup.policy"] == "compact,delete"
    assert (await ensure_configured_topics(kafka_bootstrap, grown, out=lines.append)).changes == []

    # lowering partitions is refused, and nothing else of that plan is applied either
    lowered = load_specs(
        {**base, "topics": {name: {"partitions": 3, "retention_ms": 7_200_000}}}, registry
    )
    with pytest.raises(TopicConfigError, match="cannot lower"):
        await ensure_configured_topics(kafka_bootstrap, lowered, out=lines.append)
    partitions, configs = await _state(kafka_bootstrap, name)
    assert (partitions, configs["retention.ms"]) == (5, "3600000")

    # a replication factor the topic does not have is reported, not changed
    triple = load_specs(
        {
            "defaults": {"replication_factor": 3, "min_insync_replicas": 1},
            "topics": {name: {"partitions": 5, "retention_ms": 3_600_000}},
        },
        registry,
    )
    plan = await ensure_configured_topics(kafka_bootstrap, triple, dry_run=True, out=lines.append)
    assert {c.kind for c in plan.changes} == {"not-changed"}


def test_cli_plans_the_registry_topics_and_checks_the_file(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the session's broker has them all (one broker: replication 1, min ISR 1)
    assert main(["ensure-topics", "--bootstrap", kafka_bootstrap, "--dry-run"]) == 0
    assert "nothing to change" in capsys.readouterr().out

    bad = tmp_path / "topics.toml"
    bad.write_text('[topics."no.such.topic.v1"]\npartitions = 3\n')
    assert main(["ensure-topics", "--bootstrap", kafka_bootstrap, "--config", str(bad)]) == 1
    assert "not a topic of the registry" in capsys.readouterr().err


def test_the_shipped_production_file_loads() -> None:
    shipped = Path(__file__).resolve().parents[1] / "kafka" / "topics.toml"
    specs = load_specs(shipped)
    assert {(s.replication_factor, s.min_insync_replicas) for s in specs} == {(3, 2)}
    with pytest.raises(TopicConfigError, match="more than"):
        load_specs({"defaults": {"replication_factor": 1, "min_insync_replicas": 2}})


def test_cli_reaches_a_sasl_ssl_listener(
    kafka_secure: SecureKafka, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    user, password = next(iter(kafka_secure.users.items()))
    args = [
        "ensure-topics",
        "--bootstrap",
        kafka_secure.sasl_ssl_bootstrap,
        "--security-protocol",
        "SASL_SSL",
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        user,
        "--ssl-cafile",
        str(kafka_secure.ca_file),
        "--dry-run",
    ]
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", password)
    assert main(args) == 0
    assert "nothing to change" in capsys.readouterr().out
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    assert main(args) == 1  # no password: a clear refusal, not a hang
    assert "KAFKA_SASL_PASSWORD" in capsys.readouterr().err
