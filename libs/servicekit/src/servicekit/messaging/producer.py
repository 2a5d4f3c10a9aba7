"""The one way this platform builds a Kafka producer: idempotent, so acks=all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer


def make_producer(
    bootstrap_servers: str, *, client_id: str, options: Mapping[str, Any] | None = None
) -> AIOKafkaProducer:
    """``options``: the connection's TLS/SASL keyword arguments
    (:meth:`~servicekit.messaging.security.KafkaSecurity.client_options`)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        **(options or {}),
        client_id=client_id,
        enable_idempotence=True,  # implies acks="all"; no duplicates from producer retries
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
        metadata_max_age_ms=60000,
    )
