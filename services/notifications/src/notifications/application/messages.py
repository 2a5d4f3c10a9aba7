"""Event-driven messages to citizens: the rules, and the handler that applies them.

At most one message per (event, recipient, channel): the consumer's inbox makes each event
handled once, and ``uq_notification_event_recipient_channel`` backs it up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from contracts.citizen_services import ServiceRequestStatusChanged
from contracts.inclusion import (
    DeviceReturnOverdue,
    EnrolmentCancelled,
    EnrolmentConfirmed,
    EnrolmentWaitlisted,
    SessionCancelled,
    SessionReminderDue,
    WaitlistPromoted,
)
from notifications.application.delivery import queue
from notifications.config import Settings
from notifications.domain import templating
from notifications.domain.messages import (
    INCLUSION,
    SERVICE_REQUESTS,
    Rule,
    london_date,
    london_time,
    sms_release_time,
)
from notifications.domain.notification import Channel, Status
from notifications.domain.unsubscribe import make_token
from notifications.persistence.contacts import ContactRepository
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.tables import Notification
from servicekit.messaging.consumer import MessageContext
from servicekit.uow import UnitOfWork

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _words(status: str) -> str:
    return status.replace("_", " ").replace("-", " ")


def _reference(value: object) -> str:
    return str(value)[:8].upper()


def _public_note(event: Any) -> str:
    """The staff note a citizen may read: only one staff marked public (an event without
    ``note_visibility`` counts as internal; internal notes, e.g. safeguarding, stay staff's)."""
    if getattr(event, "note_visibility", "internal") != "public":
        return ""
    return str(event.note or "")


SERVICE_REQUEST_STATUS_CHANGED = Rule(
    topic=SERVICE_REQUESTS,
    recipients=lambda e: [e.citizen_id],
    personalisation=lambda e: {
        "reference": _reference(e.request_id),
        "status": _words(e.status),
        "note": _public_note(e),
        "has_note": "yes" if _public_note(e) else "no",
    },
    email_subject="Your report ((reference)) is now ((status))",
    email_body=(
        "# Your report has been updated\n\n"
        "Reference: ((reference))\n"
        "New status: ((status))\n\n"
        "((has_note??Our note: ))((note))\n\n"
        "---\n\n"
        "You get these emails because you reported a problem to Milton Keynes City "
        "Council. You can turn them off in your notification preferences."
    ),
    sms_body="MK Council: your report ((reference)) is now ((status)).",
)

# -- digital inclusion (contracts/inclusion.py) ------------------------------------------------
# Inclusion's events carry the citizen's opaque subject id only; the address is the one the
# citizen keeps in their preferences (CitizenContact), as for service requests. Programme and
# venue (public facts) come in the events' optional fields; older events without them still
# make a message, with plainer wording.

_INCLUSION_FOOTER = (
    "\n\n---\n\n"
    "You get these emails because you signed up for digital inclusion support from Milton "
    "Keynes City Council. You can turn them off in your notification preferences."
)
_CANCEL_ADVICE = (
    "If you cannot come, please cancel your place as soon as you can so that "
    "someone on the waiting list can have it."
)
_SESSION_DETAILS = "Date: ((date))\nTime: ((time))\nPlace: ((place))"


def _session(
    starts_at: datetime,
    ends_at: datetime | None,
    title: str | None,
    venue: str | None,
    address: str | None,
    postcode: str | None,
) -> dict[str, str]:
    when = london_time(starts_at) + (f" to {london_time(ends_at)}" if ends_at else "")
    place = ", ".join(p for p in (venue, address, postcode) if p)
    return {
        "course": title or "a digital inclusion session",
        "date": london_date(starts_at),
        "time": when,
        "start": london_time(starts_at),
        "place": place or "the venue shown in your booking",
        "venue": venue or "the venue",
    }


def _enrolment(e: Any) -> dict[str, str]:
    return {
        "reference": _reference(e.enrolment_id),
        **_session(
            e.session_starts_at,
            e.session_ends_at,
            e.programme_title,
            e.venue_name,
            e.venue_address,
            e.venue_postcode,
        ),
    }


def _session_event(e: Any) -> dict[str, str]:
    """A session's own event (reminder, cancellation): its fields without a prefix."""
    return _session(
        e.starts_at, e.ends_at, e.programme_title, e.venue_name, e.venue_address, e.venue_postcode
    )


def _place_rule(*, subject: str, heading: str, lead: str, sms_body: str) -> Rule:
    """A citizen has a place (booked, or promoted from the waitlist): the same message but
    for its first words."""
    return Rule(
        topic=INCLUSION,
        recipients=lambda e: [e.citizen_id],
        personalisation=_enrolment,
        email_subject=subject,
        email_body=(
            f"# {heading}\n\n"
            f"{lead}\n\n"
            f"{_SESSION_DETAILS}\n\n"
            "Booking reference: ((reference))\n\n"
            f"{_CANCEL_ADVICE}{_INCLUSION_FOOTER}"
        ),
        sms_body=sms_body,
    )


ENROLMENT_CONFIRMED = _place_rule(
    subject="Your place is booked: ((course))",
    heading="Your place is booked",
    lead="You have a place on ((course)).",
    sms_body=(
        "MK Council: your place on ((course)) is booked for ((date)) at ((start)), "
        "((venue)). Ref ((reference))."
    ),
)

ENROLMENT_WAITLISTED = Rule(
    topic=INCLUSION,
    recipients=lambda e: [e.citizen_id],
    personalisation=lambda e: {**_enrolment(e), "position": str(e.waitlist_position)},
    email_subject="You are on the waiting list: ((course))",
    email_body=(
        "# You are on the waiting list\n\n"
        "The session of ((course)) on ((date)) at ((start)) is full, so we have put "
        "you on its waiting list.\n\n"
        "You are number ((position)) on the list. If a place comes free, it goes to "
        "the first person on the list and we will tell you straight away.\n\n"
        f"Reference: ((reference)){_INCLUSION_FOOTER}"
    ),
)

WAITLIST_PROMOTED = _place_rule(
    subject="A place has come free: ((course))",
    heading="You have a place",
    lead="A place has come free on ((course)) and it is now yours.",
    sms_body=(
        "MK Council: a place came free on ((course)), ((date)) at ((start)), "
        "((venue)). It is yours. Ref ((reference))."
    ),
)

#: EnrolmentCancelled that are not a message to the citizen: erasure (they asked to be
#: forgotten) and a cancelled session (SessionCancelled tells each of them once).
_SILENT_CANCELLATIONS = frozenset({"erasure", "session-cancelled"})

ENROLMENT_CANCELLED = Rule(
    topic=INCLUSION,
    recipients=lambda e: [e.citizen_id] if e.cancelled_by not in _SILENT_CANCELLATIONS else [],
    personalisation=lambda e: {
        **_enrolment(e),
        "what": "place" if e.previous_status == "confirmed" else "place on the waiting list",
        "by_staff": "yes" if e.cancelled_by == "staff" else "no",
    },
    email_subject="Your booking has been cancelled: ((course))",
    email_body=(
        "# Your booking has been cancelled\n\n"
        "Your ((what)) for ((course)) on ((date)) at ((start)) has been cancelled."
        "((by_staff?? Our staff cancelled it: if you did not expect this, please "
        "contact the digital inclusion team.))\n\n"
        f"Reference: ((reference)){_INCLUSION_FOOTER}"
    ),
)

SESSION_REMINDER_DUE = Rule(
    topic=INCLUSION,
    recipients=lambda e: e.citizen_ids,
    personalisation=_session_event,
    email_subject="Reminder: ((course)) on ((date))",
    email_body=(
        "# Your session is coming up\n\n"
        "This is a reminder that you have a place on ((course)).\n\n"
        f"{_SESSION_DETAILS}\n\n"
        f"{_CANCEL_ADVICE}{_INCLUSION_FOOTER}"
    ),
    sms_body=(
        "MK Council reminder: ((course)), ((date)) at ((start)), ((venue)). "
        "If you cannot come, please cancel your place."
    ),
)


def _sentence(text: str) -> str:
    """Staff's words as a sentence: a full stop unless they ended it already."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


SESSION_CANCELLED = Rule(
    topic=INCLUSION,
    # Everyone whose confirmed or waitlisted place went with the session, once each.
    recipients=lambda e: e.citizen_ids,
    personalisation=lambda e: {
        **_session_event(e),
        "reason": _sentence(e.reason),
        "has_reason": "yes" if e.reason.strip() else "no",
    },
    email_subject="Your session has been cancelled: ((course)) on ((date))",
    email_body=(
        "# Your session has been cancelled\n\n"
        "We're sorry, but the session of ((course)) on ((date)) at ((start)), "
        "((place)), has been cancelled.\n\n"
        "((has_reason??Reason: ))((reason))\n\n"
        "Your place, or your place on the waiting list, has been cancelled too. "
        "You do not need to do anything.\n\n"
        "You can book another session of this course, or find other help near you, "
        "in the digital inclusion pages of the council's website."
        f"{_INCLUSION_FOOTER}"
    ),
    sms_body=(
        "MK Council: your session has been cancelled: ((course)) on ((date)) at "
        "((start)). ((reason)) You can book another session on our website."
    ),
)

DEVICE_RETURN_OVERDUE = Rule(
    topic=INCLUSION,
    recipients=lambda e: [e.citizen_id],
    personalisation=lambda e: {
        "reference": _reference(e.loan_id),
        "due_date": london_date(e.due_at),
    },
    email_subject="Please return the device you borrowed",
    email_body=(
        "# The device you borrowed is overdue\n\n"
        "The device you borrowed from the council's device lending library was due "
        "back on ((due_date)).\n\n"
        "Please return it as soon as you can to the library or community hub where "
        "you collected it. If you need it for longer, or something is wrong with it, "
        "please talk to the staff there.\n\n"
        f"Loan reference: ((reference)){_INCLUSION_FOOTER}"
    ),
    sms_body=(
        "MK Council: the device you borrowed was due back on ((due_date)). Please "
        "return it to where you collected it. Ref ((reference))."
    ),
)

#: Which events become messages (docs/notifications.md has them as a table).
RULES: dict[type[Any], Rule] = {
    ServiceRequestStatusChanged: SERVICE_REQUEST_STATUS_CHANGED,
    EnrolmentConfirmed: ENROLMENT_CONFIRMED,
    EnrolmentWaitlisted: ENROLMENT_WAITLISTED,
    WaitlistPromoted: WAITLIST_PROMOTED,
    EnrolmentCancelled: ENROLMENT_CANCELLED,
    SessionReminderDue: SESSION_REMINDER_DUE,
    SessionCancelled: SESSION_CANCELLED,
    DeviceReturnOverdue: DEVICE_RETURN_OVERDUE,
}


async def send_event_messages(event: Any, ctx: MessageContext, *, clock: Clock = utc_now) -> None:
    """The messages :data:`RULES` makes of ``event`` (its rule found by its class), created
    at ``clock()`` (quiet hours hold an SMS from then; tests give another clock)."""
    await message_citizens(
        ctx.uow,
        ContactRepository(ctx.uow.db),
        NotificationRepository(ctx.uow.db),
        event,
        rule=RULES[type(event)],
        settings=ctx.settings,
        event_id=ctx.envelope.id,
        event_type=ctx.envelope.type,
        now=clock(),
    )


async def message_citizens(
    uow: UnitOfWork,
    contacts: ContactRepository,
    notifications: NotificationRepository,
    event: Any,
    *,
    rule: Rule,
    settings: Settings,
    event_id: str,
    event_type: str,
    now: datetime,
) -> None:
    """One message per (recipient's address, channel) the citizens consent to."""
    values = rule.personalisation(event)
    sent: set[tuple[Channel, str]] = set()  # one message per (event, address, channel)
    for citizen in dict.fromkeys(c for c in rule.recipients(event) if c):
        contact = await contacts.get(citizen)
        if contact is None:
            continue
        choices = {c.channel: c.granted for c in await contacts.consents(citizen, rule.topic.name)}
        for channel in rule.channels:
            address = contact.email if channel is Channel.EMAIL else contact.phone
            if not address or not choices.get(channel.value, channel in rule.topic.default):
                continue
            if (channel, address) in sent:  # two citizens sharing an address get it once
                continue
            sent.add((channel, address))
            notification = _message(
                citizen,
                channel,
                address,
                rule=rule,
                values=values,
                settings=settings,
                now=now,
                event_id=event_id,
                event_type=event_type,
            )
            queue(uow, notifications, notification)


def _message(
    citizen: str,
    channel: Channel,
    address: str,
    *,
    rule: Rule,
    values: dict[str, Any],
    settings: Settings,
    now: datetime,
    event_id: str,
    event_type: str,
) -> Notification:
    unsubscribe = None
    if channel is Channel.EMAIL:
        email = templating.render_email(rule.email_subject or "", rule.email_body or "", values)
        subject, body, html, text = email.subject, email.body, email.html, email.text
        release = None
        token = make_token(citizen, rule.topic.name, settings.unsubscribe_secret.get_secret_value())
        unsubscribe = f"{settings.public_url.rstrip('/')}/api/v1/unsubscribe?token={token}"
    else:
        subject, html, text = None, None, None
        body = templating.render_sms(rule.sms_body or "", values).body
        release = sms_release_time(now)
    return Notification(
        channel=channel.value,
        recipient=address,
        subject=subject,
        body=body,
        html_body=html,
        text_body=text,
        status=Status.CREATED.value,
        source_event_id=event_id,
        source_event_type=event_type,
        next_attempt_at=release,
        unsubscribe_url=unsubscribe,
        citizen_id=citizen,
        created_at=now,
        updated_at=now,
    )
