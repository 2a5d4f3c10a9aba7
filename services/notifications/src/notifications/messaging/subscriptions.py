"""{EventType: handler} — the one list of what notifications consumes."""

from __future__ import annotations

from functools import partial

from contracts import Event
from contracts.citizen_services import ServicePublished
from contracts.privacy import CitizenErasureRequested
from notifications.application.alerts import alert_staff_service_published
from notifications.application.messages import RULES, Clock, send_event_messages
from notifications.application.privacy import erase_citizen
from notifications.application.webhooks import WEBHOOK_EVENTS, fan_out
from notifications.config import Settings
from servicekit.messaging.consumer import Handler, Subscriptions


def build_subscriptions(settings: Settings, *, clock: Clock | None = None) -> Subscriptions:
    subscriptions: dict[type[Event], list[Handler]] = {
        ServicePublished: [partial(alert_staff_service_published, settings=settings)],
        # the citizen's contact details, choices and messages (application/privacy.py)
        CitizenErasureRequested: [partial(erase_citizen, settings=settings)],
    }
    for event_type, rule in RULES.items():  # messages to citizens (application/messages.py)
        subscriptions[event_type] = [partial(send_event_messages, rule=rule,
                                             settings=settings, clock=clock)]
    for event_class in WEBHOOK_EVENTS.values():  # and to partners' webhooks, after those
        subscriptions.setdefault(event_class, []).append(fan_out)
    return subscriptions
