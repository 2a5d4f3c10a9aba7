"""The local Kafka: jars, a KRaft broker that survives restarts, idempotent topic creation."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import SERVICE_REQUEST, TOPICS, all_topic_names
from mkinfra.kafka import (
    KAFKA_VERSION,
    KafkaBroker,
    KafkaSetupError,
    cache_dir,
    ensure_kafka_jars,
    ensure_topics,
    new_cluster_id,
    server_properties,
    topic_specs,
)
from mkinfra.testing import free_ports


async def _list_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, value: bytes) -> tuple[int, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()
    return meta.partition, meta.offset


async def _read_at(bootstrap: str, topic: str, partition: int, offset: int) -> bytes | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await consumer.getone()
        return record.value
    finally:
        await consumer.stop()


# ----------------------------------------------------------------------------- units


def test_cache_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MK_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path / f"kafka-{KAFKA_VERSION}"
    monkeypatch.delenv("MK_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "mk-platform" / f"kafka-{KAFKA_VERSION}"


def test_server_properties_single_node(tmp_path: Path) -> None:
    props = dict(
        line.split("=", 1) for line in server_properties(tmp_path, 19092, 19093).splitlines()
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["log.dirs"] == str(tmp_path / "logs")


def test_server_properties_idle_controller_writes_rarely(tmp_path: Path) -> None:
    """No no-op metadata record every 500 ms (the default): an idle broker stays idle."""
    props = dict(
        line.split("=", 1) for line in server_properties(tmp_path, 19092, 19093).splitlines()
    )
    assert int(props["metadata.max.idle.interval.ms"]) >= 10_000


def test_cluster_id_shape() -> None:
    cid = new_cluster_id()
    assert len(cid) == 22 and not cid.startswith("-")


def test_topic_specs_include_dlq_twins() -> None:
    specs = {name: (parts, retention) for name, parts, retention in topic_specs(TOPICS)}
    assert set(specs) == set(all_topic_names())
    assert specs[SERVICE_REQUEST.name] == (SERVICE_REQUEST.partitions, SERVICE_REQUEST.retention_ms)
    assert specs[SERVICE_REQUEST.dlq] == (1, SERVICE_REQUEST.dlq_retention_ms)


# ----------------------------------------------------------------------------- broker


@pytest.mark.kafka
def test_refuses_a_port_in_use(tmp_path: Path) -> None:
    libs = ensure_kafka_jars()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        (controller_port,) = free_ports(1)
        broker = KafkaBroker(
            tmp_path, port=busy.getsockname()[1], controller_port=controller_port, libs_dir=libs
        )
        with pytest.raises(KafkaSetupError, match="in use"):
            broker.start()
    assert not broker.running


@pytest.mark.kafka
async def test_session_broker_has_every_topic(kafka_bootstrap: str) -> None:
    assert set(all_topic_names()) <= await _list_topics(kafka_bootstrap)
    assert await ensure_topics(kafka_bootstrap) == []  # idempotent


@pytest.mark.kafka
async def test_produce_and_consume_one_record(kafka_bootstrap: str) -> None:
    value = uuid.uuid4().bytes
    partition, offset = await _produce(kafka_bootstrap, SERVICE_REQUEST.name, value)
    assert await _read_at(kafka_bootstrap, SERVICE_REQUEST.name, partition, offset) == value


@pytest.mark.kafka
@pytest.mark.slow
async def test_restart_on_same_data_dir_keeps_topics_and_records(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    broker = KafkaBroker(
        tmp_path / "data",
        port=port,
        controller_port=controller_port,
        log_file=tmp_path / "kafka.log",
        libs_dir=ensure_kafka_jars(),
    )
    try:
        started = time.monotonic()
        broker.start()
        cold = time.monotonic() - started
        bootstrap = broker.bootstrap_servers

        created = await ensure_topics(bootstrap)
        assert sorted(created) == sorted(all_topic_names())
        assert await ensure_topics(bootstrap) == []

        value = uuid.uuid4().bytes
        partition, offset = await _produce(bootstrap, SERVICE_REQUEST.name, value)

        pid = broker.pid
        assert pid is not None
        broker.stop()
        assert not broker.running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

        started = time.monotonic()
        broker.start()
        restart = time.monotonic() - started
        assert set(all_topic_names()) <= await _list_topics(bootstrap)
        assert await _read_at(bootstrap, SERVICE_REQUEST.name, partition, offset) == value
        assert await ensure_topics(bootstrap) == []

        # A crash (SIGKILL) loses nothing acknowledged with acks=all once flushed by the OS.
        second = uuid.uuid4().bytes
        partition2, offset2 = await _produce(bootstrap, SERVICE_REQUEST.name, second)
        broker.kill()
        assert not broker.running
        started = time.monotonic()
        broker.start()
        after_crash = time.monotonic() - started
        assert await _read_at(bootstrap, SERVICE_REQUEST.name, partition2, offset2) == second
        print(
            f"\nKafka start: cold {cold:.1f}s, restart {restart:.1f}s, "
            f"after SIGKILL {after_crash:.1f}s"
        )
    finally:
        broker.stop()


@pytest.mark.kafka
def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "meta.properties").write_text("version=1\nnode.id=99\ncluster.id=broken\n")
    broker = KafkaBroker(
        tmp_path / "data",
        port=port,
        controller_port=controller_port,
        log_file=tmp_path / "kafka.log",
        libs_dir=ensure_kafka_jars(),
    )
    with pytest.raises(KafkaSetupError, match="exited during start-up") as failure:
        broker.start(timeout=60)
    assert "node.id" in str(failure.value) or "meta.properties" in str(failure.value)
    assert not broker.running
