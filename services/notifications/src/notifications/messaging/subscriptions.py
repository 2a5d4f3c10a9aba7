"""{EventType: handler} — the one list of what notifications consumes."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from contracts import Event
from contracts.citizen_services import ServicePublished
from notifications.application.alerts import alert_staff_service_published
from notifications.config import Settings
from servicekit.messaging.consumer import Handler


def build_subscriptions(settings: Settings) -> Mapping[type[Event], Handler]:
    return {
        ServicePublished: partial(alert_staff_service_published, settings=settings),
    }
