"""messaging/subscriptions.py is the whole list: every event that makes messages and every
event partners can subscribe to has its handler there."""

from __future__ import annotations

from contracts.citizen_services import ServicePublished
from contracts.privacy import CitizenErasureRequested
from notifications.application.alerts import alert_staff_service_published
from notifications.application.messages import RULES, send_event_messages
from notifications.application.privacy import erase_citizen
from notifications.application.webhooks import PARTNER_EVENTS, fan_out
from notifications.messaging.subscriptions import SUBSCRIPTIONS


def test_every_message_rule_and_partner_event_is_in_the_table() -> None:
    for event in RULES:
        assert send_event_messages in SUBSCRIPTIONS[event], event
    for event in PARTNER_EVENTS:
        handlers = list(SUBSCRIPTIONS[event])
        assert handlers[-1] is fan_out, event  # partners hear after the citizens' messages
    assert list(SUBSCRIPTIONS[ServicePublished]) == [alert_staff_service_published, fan_out]
    assert list(SUBSCRIPTIONS[CitizenErasureRequested]) == [erase_citizen]


def test_nothing_else_is_in_the_table() -> None:
    expected = {*RULES, *PARTNER_EVENTS, ServicePublished, CitizenErasureRequested}
    assert set(SUBSCRIPTIONS) == expected
    for event, handlers in SUBSCRIPTIONS.items():
        assert (send_event_messages in handlers) == (event in RULES), event
        assert (fan_out in handlers) == (event in PARTNER_EVENTS), event
