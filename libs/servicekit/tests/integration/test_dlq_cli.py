"""``python -m servicekit.dlq list|show|replay`` against real Kafka: a record dead-lettered by
servicekit's own ``send_to_dlq`` is listed (without personal data), shown in full, and
replayed to its original topic with its original key, value and event headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from contracts import dlq_name
from contracts.citizen_services import ServicePublished
from contracts.topics import CATALOGUE_SERVICE
from servicekit.messaging.dlq import DeadLetter, send_to_dlq
from servicekit.messaging.producer import make_producer
from servicekit.testing import consumer_record, end_offsets, read_topic

pytestmark = [pytest.mark.kafka]
EMAIL = "jo.bloggs@example.com"
DLQ = dlq_name(CATALOGUE_SERVICE.name)


def cli(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it: Kafka from the environment (no --bootstrap)."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    return subprocess.run(
        [sys.executable, "-m", "servicekit.dlq", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


async def dead_letter(bootstrap: str, tag: str) -> tuple[ServicePublished, bytes, str]:
    """A catalogue event whose handler failed with personal data in the error, in the DLQ."""
    event = ServicePublished(
        service_id=uuid.uuid4(),
        service_code=f"{tag}-1",
        slug=tag,
        name=f"Help for {EMAIL}",
        entry_version=1,
        occurred_at=datetime.now(UTC),
    )
    record = consumer_record(event, offset=41, partition=0)
    producer = make_producer(bootstrap, client_id="dlq-cli-test")
    await producer.start()
    try:
        error = ValueError(f"cannot handle the entry of {EMAIL}")
        await send_to_dlq(producer, record, DeadLetter("handler-failed", error, 5), "test-group")
    finally:
        await producer.stop()
    event_id = dict(record.headers)["ce_id"].decode()
    return event, record.value, event_id


async def test_list_show_and_replay(kafka_bootstrap: str, tag: str) -> None:
    event, value, event_id = await dead_letter(kafka_bootstrap, tag)

    # list: where, why, when; not the payload, key or error text
    listed = cli(kafka_bootstrap, "list", CATALOGUE_SERVICE.name, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = [r for r in rows if r["event_id"] == event_id]
    assert len(mine) == 1
    row = mine[0]
    assert row["dlq_topic"] == DLQ
    assert row["reason"] == "handler-failed"
    assert row["error_type"] == "ValueError"
    assert row["attempts"] == "5"
    assert row["consumer_group"] == "test-group"
    assert row["original"] == f"{CATALOGUE_SERVICE.name}:0:41"
    assert row["event_type"] == event.event_type()
    table = cli(kafka_bootstrap, "list")
    assert table.returncode == 0, table.stderr
    assert f"{DLQ}  " in table.stdout and "handler-failed" in table.stdout
    for output in (listed.stdout, table.stdout):
        assert EMAIL not in output and "bloggs" not in output
        assert event.aggregate_id not in output  # the key: not listed either

    # show: every header (error scrubbed when dead-lettered) and the payload
    partition, offset = str(row["partition"]), str(row["offset"])
    shown = cli(kafka_bootstrap, "show", DLQ, partition, offset)
    assert shown.returncode == 0, shown.stderr
    assert "dlq-error: ValueError: cannot handle the entry of [email]" in shown.stdout
    assert "dlq-stack:" in shown.stdout and f"ce_id: {event_id}" in shown.stdout
    assert f"key: {event.aggregate_id}" in shown.stdout
    assert json.loads(shown.stdout.split("value:\n", 1)[1])["name"] == f"Help for {EMAIL}"

    # replay: the original topic gets the original key, value and event headers again
    dry = cli(kafka_bootstrap, "replay", DLQ, "--partition", partition, "--offset", offset,
              "--dry-run")  # fmt: skip
    assert dry.returncode == 0 and f"would replay {DLQ}:{partition}:{offset}" in dry.stdout
    start = await end_offsets(kafka_bootstrap, CATALOGUE_SERVICE.name)
    replayed = cli(kafka_bootstrap, "replay", CATALOGUE_SERVICE.name, "--partition", partition,
                   "--offset", offset)  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {DLQ}:{partition}:{offset} -> {CATALOGUE_SERVICE.name}:" in replayed.stdout
    records = await read_topic(
        kafka_bootstrap,
        CATALOGUE_SERVICE.name,
        start=start,
        count=1,
        predicate=lambda r: r.value == value,
    )
    assert len(records) == 1
    again = records[0]
    assert again.key == event.aggregate_id.encode()
    headers = dict(again.headers)
    assert headers["ce_id"].decode() == event_id
    assert headers["dlq-replayed-from"].decode() == f"{DLQ}:{partition}:{offset}"
    assert not [k for k in headers if k.startswith("dlq-") and k != "dlq-replayed-from"]


async def test_replay_all_and_errors(kafka_bootstrap: str, tag: str) -> None:
    await dead_letter(kafka_bootstrap, tag)
    dry = cli(kafka_bootstrap, "replay", DLQ, "--all", "--dry-run")
    assert dry.returncode == 0
    assert dry.stdout.count("would replay") >= 1

    missing = cli(kafka_bootstrap, "show", DLQ, "0", "999999999")
    assert missing.returncode == 1 and "no record" in missing.stderr
    unknown = cli(kafka_bootstrap, "list", "no-such-topic.v1")
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr
    both = cli(kafka_bootstrap, "replay", DLQ)
    assert both.returncode == 2  # --offset or --all is required
