"""The platform's shared vocabulary: the CloudEvents envelope, event models and topics.

No service imports another service; they share only what is defined here. Each context
module lists its events in ``EVENTS``; :func:`all_events` and :func:`event_class` look in
those lists (no registry filled by import side effects).
"""

from __future__ import annotations

from contracts import citizen_services, inclusion, notifications, privacy
from contracts.envelope import Envelope, EnvelopeError, header_map
from contracts.events import Event, UnknownEventType
from contracts.topics import TOPICS, Topic, dlq_name

#: Every event of the platform, from each context's ``EVENTS``.
ALL_EVENTS: tuple[type[Event], ...] = (
    *citizen_services.EVENTS,
    *inclusion.EVENTS,
    *notifications.EVENTS,
    *privacy.EVENTS,
)


def _by_type() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    for cls in ALL_EVENTS:
        if cls.event_type() in found:
            raise ValueError(f"event type {cls.event_type()} defined twice")
        found[cls.event_type()] = cls
    return found


_BY_TYPE = _by_type()


def event_class(event_type: str) -> type[Event]:
    """The class for a CloudEvents type, or :class:`UnknownEventType`."""
    try:
        return _BY_TYPE[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def all_events() -> list[type[Event]]:
    """Every event class, ordered by CloudEvents type."""
    return sorted(ALL_EVENTS, key=lambda c: c.event_type())


__all__ = [
    "ALL_EVENTS",
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
