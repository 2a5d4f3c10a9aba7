"""A citizen's own notification preferences: ``/api/v1/preferences`` (contact details and
consent per topic and channel), and ``/api/v1/preferences/email-verification`` (the
one-time link that confirms a new email address; no sign-in, the token is the authority).
Errors are problem+json."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.application import contacts
from notifications.config import Settings
from notifications.domain import recipients
from notifications.domain.messages import TOPICS
from notifications.domain.notification import Channel
from notifications.persistence.tables import CitizenContact, Consent
from servicekit.deps import ReadDbDep, UowDep
from servicekit.errors import DomainError
from servicekit.identity import CitizenPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/preferences", tags=["preferences"])


class InvalidPreference(DomainError):
    status, code, title = 400, "invalid-preference", "Invalid preference"


class ChannelChoice(BaseModel):
    email: bool
    sms: bool


class TopicPreference(ChannelChoice):
    description: str


class PreferencesPublic(BaseModel):
    email: str | None = Field(description="The confirmed address: the one emails go to.")
    email_pending: str | None = Field(
        default=None, description="A new address waiting for confirmation: a one-time link "
                                  "has been sent to it, and nothing else is until it is used.")
    phone: str | None = Field(description="E.164")
    topics: dict[str, TopicPreference]


class PreferencesUpdate(BaseModel):
    email: str | None = Field(default=None, description="A new address is used once confirmed "
                                                        "(a link is emailed to it); empty "
                                                        "string removes it.")
    phone: str | None = Field(default=None, description="A UK mobile; empty string removes it.")
    topics: dict[str, ChannelChoice] = Field(default_factory=dict)


async def _read(session: AsyncSession, citizen: str) -> PreferencesPublic:
    contact = await session.get(CitizenContact, citizen)
    rows = (await session.execute(sa.select(Consent).where(
        col(Consent.citizen_id) == citizen))).scalars().all()
    chosen = {(c.topic, c.channel): c.granted for c in rows}
    topics = {
        name: TopicPreference(
            description=topic.description,
            **{ch.value: chosen.get((name, ch.value), ch in topic.default) for ch in Channel})
        for name, topic in TOPICS.items()}
    return PreferencesPublic(email=contact.email if contact else None,
                             email_pending=contact.pending_email if contact else None,
                             phone=contact.phone if contact else None, topics=topics)


@router.get("", response_model=PreferencesPublic, summary="My notification preferences")
async def get_preferences(session: ReadDbDep,
                          citizen: CitizenPrincipal) -> PreferencesPublic:
    assert citizen.subject is not None
    return await _read(session, citizen.subject)


@router.put("", response_model=PreferencesPublic, summary="Change my notification preferences",
            responses=problem_responses(400))
async def put_preferences(body: PreferencesUpdate, uow: UowDep, request: Request,
                          citizen: CitizenPrincipal) -> PreferencesPublic:
    subject = citizen.subject
    assert subject is not None
    unknown = sorted(set(body.topics) - set(TOPICS))
    if unknown:
        raise InvalidPreference(f"Unknown topic(s): {', '.join(unknown)}",
                                topics=sorted(TOPICS))
    now = datetime.now(UTC)
    contact = await uow.session.get(CitizenContact, subject) or CitizenContact(
        citizen_id=subject, updated_at=now)
    try:
        if body.email is not None:
            contacts.change_email(
                uow.session, contact,
                recipients.validate_email(body.email) if body.email else None,
                settings=_settings(request), now=now)
        if body.phone is not None:
            contact.phone = recipients.normalise_uk_mobile(body.phone) if body.phone else None
    except recipients.InvalidRecipient as exc:
        raise InvalidPreference(str(exc)) from None
    contact.updated_at = now
    uow.session.add(contact)
    for topic, choice in body.topics.items():
        for channel in Channel:
            row = await uow.session.get(Consent, (subject, topic, channel.value))
            row = row or Consent(citizen_id=subject, topic=topic, channel=channel.value,
                                 granted=False, updated_at=now)
            row.granted, row.updated_at = getattr(choice, channel.value), now
            uow.session.add(row)
    await uow.session.flush()
    result = await _read(uow.session, subject)
    await uow.commit()
    return result


def _settings(request: Request) -> Settings:
    settings = request.app.state.runtime.settings
    assert isinstance(settings, Settings)
    return settings


class EmailVerificationPublic(BaseModel):
    confirmed: bool
    description: str = "POST this link to start sending your council updates to the address."


@router.get("/email-verification", response_model=EmailVerificationPublic,
            summary="Whether this confirmation link works (changes nothing)",
            responses=problem_responses(400))
async def describe_email_verification(token: str,
                                      session: ReadDbDep) -> EmailVerificationPublic:
    await contacts.check_link(session, token)
    return EmailVerificationPublic(confirmed=False)


@router.post("/email-verification", response_model=EmailVerificationPublic,
             summary="Confirm a new contact email address (the link emailed to it)",
             responses=problem_responses(400))
async def confirm_email_verification(token: str, uow: UowDep) -> EmailVerificationPublic:
    await contacts.confirm_email(uow.session, token)
    await uow.commit()
    return EmailVerificationPublic(confirmed=True, description="Confirmed: your council "
                                   "updates now go to this address.")
