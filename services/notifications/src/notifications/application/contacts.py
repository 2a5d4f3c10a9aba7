"""A citizen's contact email is used only once confirmed.

A new address is kept as ``pending_email`` and a one-time link (a random token, of which only
the SHA-256 is stored) is emailed to it; nothing else goes to it until the link is used
(``POST``; a ``GET`` only describes it, since mail scanners follow links). Until then
messages keep going to the confirmed address, if any. Asking again for the same address
while its link still works sends nothing more.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notifications.application.delivery import queue
from notifications.config import Settings
from notifications.domain import recipients, templating
from notifications.domain.messages import TOPICS
from notifications.domain.notification import Channel, Status
from notifications.persistence.contacts import ContactRepository
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.tables import CitizenContact, Consent, Notification
from servicekit.errors import DomainError
from servicekit.uow import UnitOfWork

VERIFY_PATH = "/api/v1/preferences/email-verification"
SUBJECT = "Confirm your email address"
BODY = (
    "# Confirm your email address\n\n"
    "Someone, hopefully you, asked Milton Keynes City Council to send your updates to "
    "this email address.\n\n"
    "To confirm it, open this link and choose to confirm:\n\n"
    "((link))\n\n"
    "The link works for ((hours)) hours. If you did not ask for this, you do not need to "
    "do anything: we will not send anything else to this address."
)


class InvalidPreference(DomainError):
    status, code, title = 400, "invalid-preference", "Invalid preference"


class InvalidVerificationLink(DomainError):
    status, code, title = 400, "invalid-verification-link", "Invalid verification link"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clear_pending(contact: CitizenContact) -> None:
    contact.pending_email = contact.pending_email_token = None
    contact.pending_email_expires_at = None


def change_email(
    uow: UnitOfWork,
    notifications: NotificationRepository,
    contact: CitizenContact,
    email: str | None,
    *,
    settings: Settings,
    now: datetime,
) -> None:
    """The citizen asked for ``email`` (None: no email at all)."""
    if email is None:
        contact.email = None
        clear_pending(contact)
        return
    if email == contact.email:
        clear_pending(contact)
        return
    if (
        contact.pending_email == email
        and contact.pending_email_expires_at is not None
        and contact.pending_email_expires_at > now
    ):
        return  # its link is on its way and still works
    token = secrets.token_urlsafe(32)
    contact.pending_email, contact.pending_email_token = email, token_hash(token)
    contact.pending_email_expires_at = now + timedelta(hours=settings.email_verification_hours)
    link = f"{settings.public_url.rstrip('/')}{VERIFY_PATH}?token={token}"
    hours = f"{settings.email_verification_hours:g}"
    rendered = templating.render_email(SUBJECT, BODY, {"link": link, "hours": hours})
    notification = Notification(
        channel=Channel.EMAIL.value,
        recipient=email,
        subject=rendered.subject,
        body=rendered.body,
        html_body=rendered.html,
        text_body=rendered.text,
        status=Status.CREATED.value,
        citizen_id=contact.citizen_id,
        created_at=now,
        updated_at=now,
    )
    queue(uow, notifications, notification)


async def _pending(contacts: ContactRepository, token: str, now: datetime) -> CitizenContact:
    contact = await contacts.with_pending_token(token_hash(token))
    if (
        contact is None
        or contact.pending_email is None
        or contact.pending_email_expires_at is None
        or contact.pending_email_expires_at <= now
    ):
        raise InvalidVerificationLink(
            "This link is not valid or has expired: ask for the "
            "address again in your notification preferences."
        )
    return contact


async def check_link(contacts: ContactRepository, token: str) -> None:
    await _pending(contacts, token, datetime.now(UTC))


async def confirm_email(contacts: ContactRepository, token: str) -> None:
    now = datetime.now(UTC)
    contact = await _pending(contacts, token, now)
    contact.email, contact.updated_at = contact.pending_email, now
    clear_pending(contact)
    contacts.add(contact)


@dataclass(frozen=True)
class ChannelChoices:
    email: bool
    sms: bool


@dataclass(frozen=True)
class TopicChoices:
    description: str
    email: bool
    sms: bool


@dataclass(frozen=True)
class Preferences:
    """A citizen's contact details and choices, every topic (defaults where not chosen)."""

    email: str | None
    email_pending: str | None
    phone: str | None
    topics: dict[str, TopicChoices]


async def preferences(contacts: ContactRepository, citizen: str) -> Preferences:
    contact = await contacts.get(citizen)
    chosen = {(c.topic, c.channel): c.granted for c in await contacts.consents(citizen)}
    topics = {
        name: TopicChoices(
            description=topic.description,
            **{ch.value: chosen.get((name, ch.value), ch in topic.default) for ch in Channel},
        )
        for name, topic in TOPICS.items()
    }
    return Preferences(
        email=contact.email if contact else None,
        email_pending=contact.pending_email if contact else None,
        phone=contact.phone if contact else None,
        topics=topics,
    )


async def change_preferences(
    uow: UnitOfWork,
    contacts: ContactRepository,
    notifications: NotificationRepository,
    citizen: str,
    *,
    email: str | None,
    phone: str | None,
    topics: Mapping[str, ChannelChoices],
    settings: Settings,
) -> Preferences:
    """``email``/``phone``: None keeps it, ``""`` removes it; a new email is used once
    confirmed (a link is emailed to it). Then the preferences as they are now."""
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown:
        raise InvalidPreference(f"Unknown topic(s): {', '.join(unknown)}", topics=sorted(TOPICS))
    now = datetime.now(UTC)
    contact = await contacts.get(citizen) or CitizenContact(citizen_id=citizen, updated_at=now)
    try:
        if email is not None:
            change_email(
                uow,
                notifications,
                contact,
                recipients.validate_email(email) if email else None,
                settings=settings,
                now=now,
            )
        if phone is not None:
            contact.phone = recipients.normalise_uk_mobile(phone) if phone else None
    except recipients.InvalidRecipient as exc:
        raise InvalidPreference(str(exc)) from None
    contact.updated_at = now
    contacts.add(contact)
    for topic, choice in topics.items():
        for channel in Channel:
            row = await contacts.get_consent(citizen, topic, channel.value)
            row = row or Consent(
                citizen_id=citizen,
                topic=topic,
                channel=channel.value,
                granted=False,
                updated_at=now,
            )
            row.granted, row.updated_at = getattr(choice, channel.value), now
            contacts.add_consent(row)
    await contacts.flush()
    return await preferences(contacts, citizen)


async def unsubscribe(contacts: ContactRepository, citizen: str, topic: str) -> None:
    """Turn the topic's email off (RFC 8058 one-click unsubscribe)."""
    now = datetime.now(UTC)
    row = await contacts.get_consent(citizen, topic, Channel.EMAIL.value)
    row = row or Consent(
        citizen_id=citizen, topic=topic, channel=Channel.EMAIL.value, granted=False, updated_at=now
    )
    row.granted, row.updated_at = False, now
    contacts.add_consent(row)
