"""{EventType: [handler, ...]} — the one list of what notifications consumes, each event's
handlers run in this order in one transaction. Messages to citizens follow
``application.messages.RULES``; partners' webhooks ``application.webhooks.PARTNER_EVENTS``
(after the messages); a test checks that both are all here."""

from __future__ import annotations

from contracts.citizen_services import (
    ServicePublished,
    ServiceRequestStatusChanged,
    ServiceRetired,
    ServiceSuspended,
    ServiceUpdated,
)
from contracts.inclusion import (
    DeviceReturnOverdue,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentWaitlisted,
    SessionCancelled,
    SessionReminderDue,
    WaitlistPromoted,
)
from contracts.privacy import CitizenErasureRequested
from notifications.application.alerts import alert_staff_service_published
from notifications.application.messages import send_event_messages
from notifications.application.privacy import erase_citizen
from notifications.application.webhooks import fan_out
from servicekit.messaging.consumer import Subscriptions

SUBSCRIPTIONS: Subscriptions = {
    ServicePublished: [alert_staff_service_published, fan_out],
    ServiceUpdated: [fan_out],
    ServiceSuspended: [fan_out],
    ServiceRetired: [fan_out],
    ServiceRequestStatusChanged: [send_event_messages, fan_out],
    EnrolmentConfirmed: [send_event_messages],
    EnrolmentWaitlisted: [send_event_messages],
    WaitlistPromoted: [send_event_messages],
    EnrolmentCancelled: [send_event_messages],
    SessionReminderDue: [send_event_messages],
    SessionCancelled: [send_event_messages],
    DeviceReturnOverdue: [send_event_messages],
    CitizenErasureRequested: [erase_citizen],  # contact details, choices, messages
}
