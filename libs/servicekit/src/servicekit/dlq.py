"""``python -m servicekit.dlq list|show|replay``: the operator's view of the dead-letter queues.

A record a consumer could not handle sits in ``<topic>.dlq`` unchanged, with why in its
``dlq-*`` headers (:mod:`servicekit.messaging.dlq`). This CLI:

* ``list [TOPIC] [--json]``: one line per dead record: where it is (DLQ topic, partition,
  offset), where it came from, when, the reason, the error's type, the attempts, the
  consumer group and the event type. No key, payload or error text: nothing personal.
* ``show TOPIC PARTITION OFFSET``: one record in full: every header (the error text and
  stack were scrubbed of personal data when it was dead-lettered), the key and the payload
  (which may hold personal data: for the operator's eyes, not for tickets).
* ``replay TOPIC (--offset N [--partition P] | --all) [--dry-run]``: publish the record(s)
  again to the original topic with the original key, value and headers (``dlq-*`` headers
  dropped, ``dlq-replayed-from`` added). Safe to repeat: consumers record each event id in
  their inbox, so an event that was in fact handled is skipped.

TOPIC is a DLQ topic (``inclusion.enrolment.v1.dlq``) or its original (``.dlq`` is added).
Kafka: ``--bootstrap``, else the settings of the service named by ``--env-prefix`` (e.g.
``NOTIFICATIONS_``, so a service's pod reads its own Kafka settings), else
``KAFKA_BOOTSTRAP_SERVERS``, else 127.0.0.1:9092.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic_settings import SettingsConfigDict

from contracts.topics import DLQ_SUFFIX, TOPICS, dlq_name
from servicekit.settings import ServiceSettings

DLQ_HEADER_PREFIX = "dlq-"
REPLAYED_FROM = "dlq-replayed-from"
#: What ``list`` prints of a record's headers (none of them personal).
LIST_FIELDS = (
    "dlq_topic",
    "partition",
    "offset",
    "failed_at",
    "reason",
    "error_type",
    "attempts",
    "consumer_group",
    "original",
    "event_type",
    "event_id",
    "replayed_from",
)


@dataclass(frozen=True)
class DeadRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", errors="replace")
        return None

    @property
    def original_topic(self) -> str:
        return self.header("dlq-original-topic") or self.topic.removesuffix(DLQ_SUFFIX)

    def summary(self) -> dict[str, Any]:
        """What ``list`` shows: where, why and when; nothing from the payload."""
        original = ":".join(
            part or "?"
            for part in (
                self.original_topic,
                self.header("dlq-original-partition"),
                self.header("dlq-original-offset"),
            )
        )
        return {
            "dlq_topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "failed_at": self.header("dlq-failed-at")
            or datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat(),
            "reason": self.header("dlq-reason") or "?",
            "error_type": self.header("dlq-error-type") or "?",
            "attempts": self.header("dlq-attempts") or "?",
            "consumer_group": self.header("dlq-consumer-group") or "?",
            "original": original,
            "event_type": self.header("ce_type") or "?",
            "event_id": self.header("ce_id") or "?",
            "replayed_from": self.header(REPLAYED_FROM) or "",
        }

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original record's headers (the ``dlq-*`` ones dropped), and where it was."""
        kept = [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]
        return [*kept, (REPLAYED_FROM, f"{self.topic}:{self.partition}:{self.offset}".encode())]


def dlq_topic(name: str) -> str:
    """``name`` as a DLQ topic: itself if it ends in ``.dlq``, else its ``.dlq`` twin."""
    return name if name.endswith(DLQ_SUFFIX) else dlq_name(name)


def all_dlq_topics() -> list[str]:
    return [dlq_name(t.name) for t in TOPICS]


def _client_options(env_prefix: str | None) -> tuple[str, dict[str, Any]]:
    """Bootstrap servers and any further client options (TLS/SASL, when servicekit's
    settings carry them) from a service's settings."""
    config = SettingsConfigDict(env_prefix=env_prefix or "", extra="ignore")
    settings_class = type("DlqSettings", (ServiceSettings,), {"model_config": config})
    settings = settings_class()
    security = getattr(settings, "kafka_security", None)
    options: dict[str, Any] = dict(security.client_options()) if security is not None else {}
    return settings.kafka_bootstrap_servers, options


async def read_dlq(
    bootstrap: str,
    topic: str,
    *,
    partition: int | None = None,
    offset: int | None = None,
    client_options: dict[str, Any] | None = None,
) -> list[DeadRecord]:
    """Every record of ``topic`` (or of one partition, or the one at ``offset``) up to the
    end offsets when the read began."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **(client_options or {})
    )
    await consumer.start()
    try:
        known = consumer.partitions_for_topic(topic)
        if not known:
            await consumer._client.force_metadata_update()
            known = consumer.partitions_for_topic(topic) or set()
        if not known:
            raise LookupError(f"topic {topic} does not exist")
        numbers = sorted(known) if partition is None else [partition]
        if partition is not None and partition not in known:
            raise LookupError(f"{topic} has no partition {partition}")
        tps = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        todo: dict[TopicPartition, int] = {}
        for tp in tps:
            first = starts[tp] if offset is None else offset
            last = ends[tp] if offset is None else min(offset + 1, ends[tp])
            if first < last:
                consumer.seek(tp, first)
                todo[tp] = last
            else:
                consumer.pause(tp)
        records: list[DeadRecord] = []
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, recs in batch.items():
                for r in recs:
                    if tp in todo and r.offset < todo[tp]:
                        records.append(
                            DeadRecord(
                                topic=r.topic,
                                partition=r.partition,
                                offset=r.offset,
                                timestamp_ms=r.timestamp,
                                key=r.key,
                                value=r.value,
                                headers=[(k, bytes(v)) for k, v in (r.headers or ())],
                            )
                        )
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    consumer.pause(tp)
                    del todo[tp]
        return sorted(records, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def replay(
    bootstrap: str,
    records: Sequence[DeadRecord],
    *,
    client_options: dict[str, Any] | None = None,
) -> list[tuple[DeadRecord, str, int, int]]:
    """Publish each record to its original topic (key, value, headers kept); returns
    (record, topic, partition, offset) of each publication."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="servicekit-dlq-replay",
        enable_idempotence=True,
        acks="all",
        **(client_options or {}),
    )
    await producer.start()
    try:
        done = []
        for record in records:
            meta = await producer.send_and_wait(
                record.original_topic,
                value=record.value,
                key=record.key,
                headers=record.replay_headers(),
            )
            done.append((record, meta.topic, meta.partition, meta.offset))
        return done
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- CLI


def _print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    columns = [c for c in LIST_FIELDS if c != "replayed_from" or any(r[c] for r in rows)]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    out.write("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip() + "\n")
    for row in rows:
        out.write("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip() + "\n")


def _show(record: DeadRecord, out: TextIO) -> None:
    out.write(f"{record.topic} partition {record.partition} offset {record.offset}\n")
    out.write("headers:\n")
    for key, value in record.headers:
        text = value.decode("utf-8", errors="replace")
        if "\n" in text:
            out.write(f"  {key}:\n")
            out.writelines(f"    {line}\n" for line in text.splitlines())
        else:
            out.write(f"  {key}: {text}\n")
    out.write(f"key: {record.key.decode('utf-8', errors='replace') if record.key else ''}\n")
    out.write("value:\n")
    if record.value is None:
        out.write("  (none)\n")
        return
    try:
        out.write(json.dumps(json.loads(record.value), indent=2, ensure_ascii=False) + "\n")
    except ValueError:
        out.write(record.value.decode("utf-8", errors="replace") + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m servicekit.dlq",
        description="List, show and replay the records of the dead-letter queues.",
    )
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (host:port,...)")
    parser.add_argument(
        "--env-prefix",
        help="read Kafka settings as this service does, e.g. NOTIFICATIONS_ "
        "(default: KAFKA_BOOTSTRAP_SERVERS)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the dead records, without personal data")
    listing.add_argument("topic", nargs="?", help="a DLQ topic or its original (default: all)")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    show = commands.add_parser("show", help="one record: headers, key and payload")
    show.add_argument("topic")
    show.add_argument("partition", type=int)
    show.add_argument("offset", type=int)
    again = commands.add_parser("replay", help="publish records again to the original topic")
    again.add_argument("topic")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--offset", type=int, help="the record at this offset")
    which.add_argument("--all", action="store_true", help="every record of the DLQ")
    again.add_argument("--partition", type=int, help="with --offset (default: 0)")
    again.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    return parser


async def run(args: argparse.Namespace, out: TextIO) -> int:
    bootstrap, options = _client_options(args.env_prefix)
    bootstrap = args.bootstrap or bootstrap
    if args.command == "list":
        topics = [dlq_topic(args.topic)] if args.topic else all_dlq_topics()
        rows = []
        for topic in topics:
            try:
                records = await read_dlq(bootstrap, topic, client_options=options)
            except LookupError:
                if args.topic:
                    raise
                continue  # a DLQ topic not created on this cluster: nothing dead there
            rows += [r.summary() for r in records]
        if args.json:
            out.writelines(json.dumps(row) + "\n" for row in rows)
        elif rows:
            _print_table(rows, out)
        else:
            out.write("no dead records\n")
        return 0
    topic = dlq_topic(args.topic)
    if args.command == "show":
        found = await read_dlq(
            bootstrap, topic, partition=args.partition, offset=args.offset, client_options=options
        )
        if not found:
            print(f"no record at {topic} {args.partition}:{args.offset}", file=sys.stderr)
            return 1
        _show(found[0], out)
        return 0
    if args.all:
        if args.partition is not None:
            raise SystemExit("--partition goes with --offset")
        records = await read_dlq(bootstrap, topic, client_options=options)
    else:
        partition = 0 if args.partition is None else args.partition
        records = await read_dlq(
            bootstrap, topic, partition=partition, offset=args.offset, client_options=options
        )
        if not records:
            print(f"no record at {topic} {partition}:{args.offset}", file=sys.stderr)
            return 1
    if args.dry_run:
        for r in records:
            out.write(f"would replay {r.topic}:{r.partition}:{r.offset} -> {r.original_topic}\n")
        return 0
    for record, to_topic, to_partition, to_offset in await replay(
        bootstrap, records, client_options=options
    ):
        out.write(
            f"replayed {record.topic}:{record.partition}:{record.offset} -> "
            f"{to_topic}:{to_partition}:{to_offset}\n"
        )
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(run(args, out or sys.stdout))
    except LookupError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
