"""Event-driven messages to citizens: the rules, and the handler that applies them.

At most one message per (event, recipient, channel): the consumer's inbox makes each event
handled once, and ``uq_notification_event_recipient_channel`` backs it up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from contracts.citizen_services import ServiceRequestStatusChanged
from notifications.application.delivery import publish_status
from notifications.config import Settings
from notifications.domain import templating
from notifications.domain.messages import SERVICE_REQUESTS, Rule, sms_release_time
from notifications.domain.notification import Channel, Status
from notifications.domain.unsubscribe import make_token
from notifications.persistence.tables import CitizenContact, Consent, Notification
from servicekit.messaging.consumer import MessageContext

Clock = Callable[[], datetime]


def _words(status: str) -> str:
    return status.replace("_", " ").replace("-", " ")


SERVICE_REQUEST_STATUS_CHANGED = Rule(
    topic=SERVICE_REQUESTS,
    recipient=lambda e: e.citizen_id,
    personalisation=lambda e: {
        "reference": str(e.request_id)[:8].upper(), "status": _words(e.status),
        "note": e.note or "", "has_note": "yes" if e.note else "no"},
    email_subject="Your report ((reference)) is now ((status))",
    email_body=("# Your report has been updated\n\n"
                "Reference: ((reference))\n"
                "New status: ((status))\n\n"
                "((has_note??Our note: ))((note))\n\n"
                "---\n\n"
                "You get these emails because you reported a problem to Milton Keynes City "
                "Council. You can turn them off in your notification preferences."),
    sms_body="MK Council: your report ((reference)) is now ((status)).",
)

#: Which events become messages. Inclusion's enrolment events join here once their
#: contracts settle (EnrolmentConfirmed, WaitlistPromoted, SessionReminderDue, ...).
RULES: dict[type[Any], Rule] = {
    ServiceRequestStatusChanged: SERVICE_REQUEST_STATUS_CHANGED,
}


async def send_event_messages(event: Any, ctx: MessageContext, *, rule: Rule,
                              settings: Settings, clock: Clock | None = None) -> None:
    citizen = rule.recipient(event)
    if not citizen:
        return
    contact = await ctx.session.get(CitizenContact, citizen)
    if contact is None:
        return
    choices = {c.channel: c.granted for c in (await ctx.session.execute(
        sa.select(Consent).where(col(Consent.citizen_id) == citizen,
                                 col(Consent.topic) == rule.topic.name))).scalars()}
    now = (clock or (lambda: datetime.now(UTC)))()
    values = rule.personalisation(event)
    for channel in rule.channels:
        address = contact.email if channel is Channel.EMAIL else contact.phone
        if not address or not choices.get(channel.value, channel in rule.topic.default):
            continue
        unsubscribe = None
        if channel is Channel.EMAIL:
            email = templating.render_email(rule.email_subject or "", rule.email_body or "",
                                            values)
            subject, body, html, text = email.subject, email.body, email.html, email.text
            release = None
            token = make_token(citizen, rule.topic.name,
                               settings.unsubscribe_secret.get_secret_value())
            unsubscribe = f"{settings.public_url.rstrip('/')}/api/v1/unsubscribe?token={token}"
        else:
            subject, html, text = None, None, None
            body = templating.render_sms(rule.sms_body or "", values).body
            release = sms_release_time(now)
        notification = Notification(
            channel=channel.value, recipient=address, subject=subject, body=body,
            html_body=html, text_body=text, status=Status.CREATED.value,
            source_event_id=ctx.envelope.id, source_event_type=ctx.envelope.type,
            next_attempt_at=release, unsubscribe_url=unsubscribe, created_at=now,
            updated_at=now)
        ctx.session.add(notification)
        publish_status(ctx.session, settings, notification.model_dump(), Status.CREATED, None,
                       now)
