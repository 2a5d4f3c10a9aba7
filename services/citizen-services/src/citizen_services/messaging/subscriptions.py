"""{EventType: handler} — the one list of what citizen-services consumes (nothing yet)."""

from collections.abc import Mapping

from contracts import Event
from servicekit.messaging.consumer import Handler

SUBSCRIPTIONS: Mapping[type[Event], Handler] = {}
