"""{EventType: [handler, ...]} — the one list of what inclusion consumes."""

from contracts.privacy import CitizenErasureRequested
from inclusion.application.erasure import erase_citizen
from servicekit.messaging.consumer import Subscriptions

SUBSCRIPTIONS: Subscriptions = {
    CitizenErasureRequested: [erase_citizen],  # the participant, as DELETE /participants/me
}
