"""{EventType: handler} — the one list of what inclusion consumes."""

from collections.abc import Mapping

from contracts import Event
from contracts.privacy import CitizenErasureRequested
from inclusion.application.erasure import erase_citizen
from servicekit.messaging.consumer import Handler

SUBSCRIPTIONS: Mapping[type[Event], Handler] = {
    CitizenErasureRequested: erase_citizen,  # the participant, as DELETE /participants/me
}
