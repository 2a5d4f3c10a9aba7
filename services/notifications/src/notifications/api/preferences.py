"""A citizen's own notification preferences: ``/api/v1/preferences`` (contact details and
consent per topic and channel), and ``/api/v1/preferences/email-verification`` (the
one-time link that confirms a new email address; no sign-in, the token is the authority).
Errors are problem+json."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from notifications.api.deps import SettingsDep
from notifications.application import contacts
from notifications.persistence.contacts import ContactRepository
from notifications.persistence.notifications import NotificationRepository
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import CitizenPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/preferences", tags=["preferences"])


class ChannelChoice(BaseModel):
    email: bool
    sms: bool


class TopicPreference(ChannelChoice):
    description: str


class PreferencesPublic(BaseModel):
    email: str | None = Field(description="The confirmed address: the one emails go to.")
    email_pending: str | None = Field(
        default=None,
        description="A new address waiting for confirmation: a one-time link "
        "has been sent to it, and nothing else is until it is used.",
    )
    phone: str | None = Field(description="E.164")
    topics: dict[str, TopicPreference]


class PreferencesUpdate(BaseModel):
    email: str | None = Field(
        default=None,
        description="A new address is used once confirmed "
        "(a link is emailed to it); empty "
        "string removes it.",
    )
    phone: str | None = Field(default=None, description="A UK mobile; empty string removes it.")
    topics: dict[str, ChannelChoice] = Field(default_factory=dict)


def _public(preferences: contacts.Preferences) -> PreferencesPublic:
    return PreferencesPublic(
        email=preferences.email,
        email_pending=preferences.email_pending,
        phone=preferences.phone,
        topics={
            name: TopicPreference(description=t.description, email=t.email, sms=t.sms)
            for name, t in preferences.topics.items()
        },
    )


@router.get("", response_model=PreferencesPublic, summary="My notification preferences")
async def get_preferences(db: ReadDbDep, citizen: CitizenPrincipal) -> PreferencesPublic:
    assert citizen.subject is not None
    return _public(await contacts.preferences(ContactRepository(db), citizen.subject))


@router.put(
    "",
    response_model=PreferencesPublic,
    summary="Change my notification preferences",
    responses=problem_responses(400),
)
async def put_preferences(
    body: PreferencesUpdate, uow: UowDep, settings: SettingsDep, citizen: CitizenPrincipal
) -> PreferencesPublic:
    assert citizen.subject is not None
    return _public(
        await contacts.change_preferences(
            uow,
            ContactRepository(uow.db),
            NotificationRepository(uow.db),
            citizen.subject,
            email=body.email,
            phone=body.phone,
            topics={
                name: contacts.ChannelChoices(email=c.email, sms=c.sms)
                for name, c in body.topics.items()
            },
            settings=settings,
        )
    )


class EmailVerificationPublic(BaseModel):
    confirmed: bool
    description: str = "POST this link to start sending your council updates to the address."


@router.get(
    "/email-verification",
    response_model=EmailVerificationPublic,
    summary="Whether this confirmation link works (changes nothing)",
    responses=problem_responses(400),
)
async def describe_email_verification(token: str, db: ReadDbDep) -> EmailVerificationPublic:
    await contacts.check_link(ContactRepository(db), token)
    return EmailVerificationPublic(confirmed=False)


@router.post(
    "/email-verification",
    response_model=EmailVerificationPublic,
    summary="Confirm a new contact email address (the link emailed to it)",
    responses=problem_responses(400),
)
async def confirm_email_verification(token: str, uow: UowDep) -> EmailVerificationPublic:
    await contacts.confirm_email(ContactRepository(uow.db), token)
    return EmailVerificationPublic(
        confirmed=True, description="Confirmed: your council updates now go to this address."
    )
