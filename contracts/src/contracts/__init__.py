"""The platform's shared vocabulary: the CloudEvents envelope, event models and topics.

No service imports another service; they share only what is defined here.
"""

from contracts.envelope import Envelope, EnvelopeError, header_map
from contracts.events import Event, UnknownEventType, all_events, event_class
from contracts.topics import TOPICS, Topic, dlq_name

__all__ = [
    "TOPICS",
    "Envelope",
    "EnvelopeError",
    "Event",
    "Topic",
    "UnknownEventType",
    "all_events",
    "dlq_name",
    "event_class",
    "header_map",
]
