"""{EventType: [handler, ...]} — the one list of what citizen-services consumes."""

from citizen_services.application.erasure import erase_citizen
from contracts.privacy import CitizenErasureRequested
from servicekit.messaging.consumer import Subscriptions

SUBSCRIPTIONS: Subscriptions = {
    CitizenErasureRequested: [erase_citizen],  # their service requests (application/erasure.py)
}
