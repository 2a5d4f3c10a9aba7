"""The dead-letter queue: a record that cannot be handled goes to ``<topic>.dlq``, unchanged,
with why in its headers (reason, error and its type, a scrubbed stack, attempts, where it
came from, the consumer group, when). Personal data is scrubbed from the error text."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from contracts import dlq_name
from servicekit.redact import scrub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    reason: str  # "undecodable" | "unknown-type" | "handler-failed" | "permanent"
    error: BaseException
    attempts: int


def dead_letter_headers(
    record: ConsumerRecord[Any, Any], dl: DeadLetter, consumer_group: str
) -> list[tuple[str, bytes]]:
    """The record's own headers and the ``dlq-*`` headers that say why it is here."""
    stack = scrub("".join(traceback.format_exception(dl.error)))[-4000:]
    error_text = scrub(f"{type(dl.error).__name__}: {dl.error}")[:2000]
    return [
        *(record.headers or ()),
        ("dlq-reason", dl.reason.encode()),
        ("dlq-error", error_text.encode()),
        ("dlq-error-type", type(dl.error).__name__.encode()),
        ("dlq-stack", stack.encode()),
        ("dlq-attempts", str(dl.attempts).encode()),
        ("dlq-original-topic", record.topic.encode()),
        ("dlq-original-partition", str(record.partition).encode()),
        ("dlq-original-offset", str(record.offset).encode()),
        ("dlq-consumer-group", consumer_group.encode()),
        ("dlq-failed-at", datetime.now(UTC).isoformat().encode()),
    ]


async def send_to_dlq(
    producer: AIOKafkaProducer,
    record: ConsumerRecord[Any, Any],
    dl: DeadLetter,
    consumer_group: str,
) -> None:
    """Send ``record`` to its topic's DLQ and wait for Kafka's acknowledgement."""
    await producer.send_and_wait(
        dlq_name(record.topic),
        value=record.value,
        key=record.key,
        headers=dead_letter_headers(record, dl, consumer_group),
    )
    log.error(
        "consumer %s: record %s/%d@%d dead-lettered (%s: %s)",
        consumer_group,
        record.topic,
        record.partition,
        record.offset,
        dl.reason,
        type(dl.error).__name__,
    )
