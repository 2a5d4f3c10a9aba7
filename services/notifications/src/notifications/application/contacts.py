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
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.application.delivery import publish_status
from notifications.config import Settings
from notifications.domain import templating
from notifications.domain.notification import Channel, Status
from notifications.persistence.tables import CitizenContact, Notification
from servicekit.errors import DomainError

VERIFY_PATH = "/api/v1/preferences/email-verification"
SUBJECT = "Confirm your email address"
BODY = ("# Confirm your email address\n\n"
        "Someone, hopefully you, asked Milton Keynes City Council to send your updates to "
        "this email address.\n\n"
        "To confirm it, open this link and choose to confirm:\n\n"
        "((link))\n\n"
        "The link works for ((hours)) hours. If you did not ask for this, you do not need to "
        "do anything: we will not send anything else to this address.")


class InvalidVerificationLink(DomainError):
    status, code, title = 400, "invalid-verification-link", "Invalid verification link"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clear_pending(contact: CitizenContact) -> None:
    contact.pending_email = contact.pending_email_token = None
    contact.pending_email_expires_at = None


def change_email(session: AsyncSession, contact: CitizenContact, email: str | None, *,
                 settings: Settings, now: datetime) -> None:
    """The citizen asked for ``email`` (None: no email at all)."""
    if email is None:
        contact.email = None
        clear_pending(contact)
        return
    if email == contact.email:
        clear_pending(contact)
        return
    if (contact.pending_email == email and contact.pending_email_expires_at is not None
            and contact.pending_email_expires_at > now):
        return  # its link is on its way and still works
    token = secrets.token_urlsafe(32)
    contact.pending_email, contact.pending_email_token = email, token_hash(token)
    contact.pending_email_expires_at = now + timedelta(hours=settings.email_verification_hours)
    link = f"{settings.public_url.rstrip('/')}{VERIFY_PATH}?token={token}"
    hours = f"{settings.email_verification_hours:g}"
    rendered = templating.render_email(SUBJECT, BODY, {"link": link, "hours": hours})
    notification = Notification(
        channel=Channel.EMAIL.value, recipient=email, subject=rendered.subject,
        body=rendered.body, html_body=rendered.html, text_body=rendered.text,
        status=Status.CREATED.value, citizen_id=contact.citizen_id, created_at=now,
        updated_at=now)
    session.add(notification)
    publish_status(session, settings, notification.model_dump(), Status.CREATED, None, now)


async def _pending(session: AsyncSession, token: str, now: datetime) -> CitizenContact:
    contact = (await session.execute(sa.select(CitizenContact).where(
        col(CitizenContact.pending_email_token) == token_hash(token)))).scalars().first()
    if (contact is None or contact.pending_email is None
            or contact.pending_email_expires_at is None
            or contact.pending_email_expires_at <= now):
        raise InvalidVerificationLink("This link is not valid or has expired: ask for the "
                                      "address again in your notification preferences.")
    return contact


async def check_link(session: AsyncSession, token: str) -> None:
    await _pending(session, token, datetime.now(UTC))


async def confirm_email(session: AsyncSession, token: str) -> None:
    now = datetime.now(UTC)
    contact = await _pending(session, token, now)
    contact.email, contact.updated_at = contact.pending_email, now
    clear_pending(contact)
    session.add(contact)
