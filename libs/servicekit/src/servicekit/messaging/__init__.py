"""Kafka messaging: outbox (publishing), relay, consumer with inbox, retries and DLQ."""

from servicekit.messaging.consumer import EventConsumer, MessageContext, PermanentError
from servicekit.messaging.outbox import record_event
from servicekit.messaging.relay import OutboxRelay

__all__ = ["EventConsumer", "MessageContext", "OutboxRelay", "PermanentError", "record_event"]
