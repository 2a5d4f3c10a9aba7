"""{EventType: handler} — the one list of what notifications consumes."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from contracts import Event
from contracts.citizen_services import ServicePublished
from contracts.privacy import CitizenErasureRequested
from notifications.application.alerts import alert_staff_service_published
from notifications.application.messages import RULES, Clock, send_event_messages
from notifications.application.privacy import erase_citizen
from notifications.application.webhooks import WEBHOOK_EVENTS, fan_out
from notifications.config import Settings
from servicekit.messaging.consumer import Handler, MessageContext


def build_subscriptions(settings: Settings, *, clock: Clock | None = None
                        ) -> Mapping[type[Event], Handler]:
    subscriptions: dict[type[Event], Handler] = {
        ServicePublished: partial(alert_staff_service_published, settings=settings),
        # the citizen's contact details, choices and messages (application/privacy.py)
        CitizenErasureRequested: partial(erase_citizen, settings=settings),
    }
    for event_type, rule in RULES.items():  # messages to citizens (application/messages.py)
        subscriptions[event_type] = partial(send_event_messages, rule=rule, settings=settings,
                                            clock=clock)
    for event_class in WEBHOOK_EVENTS.values():  # and to partners' webhooks
        subscriptions[event_class] = _and_fan_out(subscriptions.get(event_class))
    return subscriptions


def _and_fan_out(first: Handler | None) -> Handler:
    """``first`` (if any), then the webhook fan-out, in the same transaction."""
    async def handle(event: Any, ctx: MessageContext) -> None:
        if first is not None:
            await first(event, ctx)
        await fan_out(event, ctx)

    return handle
