"""{EventType: handler} — the one list of what citizen-services consumes."""

from collections.abc import Mapping

from citizen_services.application.erasure import erase_citizen
from contracts import Event
from contracts.privacy import CitizenErasureRequested
from servicekit.messaging.consumer import Handler

SUBSCRIPTIONS: Mapping[type[Event], Handler] = {
    CitizenErasureRequested: erase_citizen,  # their service requests (application/erasure.py)
}
