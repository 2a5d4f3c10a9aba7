"""One-click unsubscribe (RFC 8058): ``/api/v1/unsubscribe?token=…`` — no sign-in needed,
the signed token is the authority. ``GET`` only says what the link does (mail scanners
follow links); ``POST`` (what mail clients send, body ``List-Unsubscribe=One-Click``)
turns the topic's email off."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from notifications.api.deps import SettingsDep
from notifications.application import contacts
from notifications.config import Settings
from notifications.domain.messages import TOPICS
from notifications.domain.notification import Channel
from notifications.domain.unsubscribe import InvalidToken, read_token
from notifications.persistence.contacts import ContactRepository
from servicekit.deps import UowDep
from servicekit.errors import DomainError
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/unsubscribe", tags=["preferences"])


class InvalidUnsubscribeLink(DomainError):
    status, code, title = 400, "invalid-unsubscribe-link", "Invalid unsubscribe link"


class UnsubscribePublic(BaseModel):
    topic: str
    description: str
    channel: str
    unsubscribed: bool


def _read(settings: Settings, token: str) -> tuple[str, str]:
    try:
        citizen, topic = read_token(token, settings.unsubscribe_secret.get_secret_value())
    except InvalidToken:
        raise InvalidUnsubscribeLink("This unsubscribe link is not valid.") from None
    if topic not in TOPICS:
        raise InvalidUnsubscribeLink("This unsubscribe link is not valid.")
    return citizen, topic


@router.get(
    "",
    response_model=UnsubscribePublic,
    responses=problem_responses(400),
    summary="What this unsubscribe link turns off (changes nothing)",
)
async def describe(settings: SettingsDep, token: str) -> UnsubscribePublic:
    _, topic = _read(settings, token)
    return UnsubscribePublic(
        topic=topic,
        description=TOPICS[topic].description,
        channel=Channel.EMAIL.value,
        unsubscribed=False,
    )


@router.post(
    "",
    response_model=UnsubscribePublic,
    responses=problem_responses(400),
    summary="One-click unsubscribe (RFC 8058): stop these emails",
)
async def unsubscribe(settings: SettingsDep, token: str, uow: UowDep) -> UnsubscribePublic:
    citizen, topic = _read(settings, token)
    await contacts.unsubscribe(ContactRepository(uow.db), citizen, topic)
    return UnsubscribePublic(
        topic=topic,
        description=TOPICS[topic].description,
        channel=Channel.EMAIL.value,
        unsubscribed=True,
    )
