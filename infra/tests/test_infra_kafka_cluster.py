"""The local 3-broker cluster: replicated topics with min ISR 2, surviving one dead broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import SERVICE_REQUEST
from mkinfra.kafka import KafkaCluster, server_properties

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_cluster_node_properties_name_every_voter(tmp_path) -> None:
    props = server_properties(
        tmp_path,
        9092,
        9093,
        node_id=2,
        quorum_voters="1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3",
        replication=3,
        min_insync_replicas=2,
    )
    lines = dict(line.split("=", 1) for line in props.splitlines())
    assert lines["node.id"] == "2"
    assert lines["controller.quorum.voters"] == "1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3"
    assert lines["default.replication.factor"] == "3"
    assert lines["min.insync.replicas"] == "2"
    assert lines["offsets.topic.replication.factor"] == "3"
    assert lines["transaction.state.log.min.isr"] == "2"


async def _describe(bootstrap: str, topic: str) -> tuple[list[list[int]], str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        replicas = [list(p["replicas"]) for p in described[0]["partitions"]]
        for _ in range(30):  # every broker learns a new topic's metadata within moments
            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})]
            )
            error, *_, entries = configs[0].resources[0]
            if not error:
                return replicas, dict(e[:2] for e in entries)["min.insync.replicas"]
            await asyncio.sleep(1)
        raise AssertionError(f"describing {topic}'s configs failed: error {error}")
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=30000
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str, partitions: int) -> set[bytes]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        seen: set[bytes] = set()
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            batches = await consumer.getmany(timeout_ms=2000)
            for records in batches.values():
                seen.update(r.value for r in records if r.value is not None)
        return seen
    finally:
        await consumer.stop()


async def test_topics_are_replicated_three_times_and_survive_a_killed_broker(
    kafka_cluster: KafkaCluster,
) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    assert len(kafka_cluster.nodes) == 3
    replicas, min_isr = await _describe(bootstrap, SERVICE_REQUEST.name)
    assert len(replicas) == SERVICE_REQUEST.partitions
    assert all(sorted(r) == [1, 2, 3] for r in replicas)
    assert min_isr == "2"

    run = uuid.uuid4().hex
    before = [f"{run}-before-{i}".encode() for i in range(10)]
    await _produce(bootstrap, SERVICE_REQUEST.name, before)
    victim = kafka_cluster.nodes[0]
    victim.kill()
    try:
        # two in-sync replicas left: acks=all writes still succeed, nothing written is lost
        others = ",".join(n.bootstrap_servers for n in kafka_cluster.nodes[1:])
        during = [f"{run}-during-{i}".encode() for i in range(10)]
        await _produce(others, SERVICE_REQUEST.name, during)
        seen = await _read_all(others, SERVICE_REQUEST.name, SERVICE_REQUEST.partitions)
        assert set(before) | set(during) <= seen
    finally:
        victim.start()
    seen = await _read_all(bootstrap, SERVICE_REQUEST.name, SERVICE_REQUEST.partitions)
    assert set(before) | set(during) <= seen
