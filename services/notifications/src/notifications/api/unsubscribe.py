"""One-click unsubscribe (RFC 8058): ``/api/v1/unsubscribe?token=…`` — no sign-in needed,
the signed token is the authority. ``GET`` only says what the link does (mail scanners
follow links); ``POST`` (what mail clients send, body ``List-Unsubscribe=One-Click``)
turns the topic's email off."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from notifications.config import Settings
from notifications.domain.messages import TOPICS
from notifications.domain.notification import Channel
from notifications.domain.unsubscribe import InvalidToken, read_token
from notifications.persistence.tables import Consent
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


def _read(request: Request, token: str) -> tuple[str, str]:
    settings = request.app.state.runtime.settings
    assert isinstance(settings, Settings)
    try:
        citizen, topic = read_token(token, settings.unsubscribe_secret.get_secret_value())
    except InvalidToken:
        raise InvalidUnsubscribeLink("This unsubscribe link is not valid.") from None
    if topic not in TOPICS:
        raise InvalidUnsubscribeLink("This unsubscribe link is not valid.")
    return citizen, topic


@router.get("", response_model=UnsubscribePublic, responses=problem_responses(400),
            summary="What this unsubscribe link turns off (changes nothing)")
async def describe(request: Request, token: str) -> UnsubscribePublic:
    _, topic = _read(request, token)
    return UnsubscribePublic(topic=topic, description=TOPICS[topic].description,
                             channel=Channel.EMAIL.value, unsubscribed=False)


@router.post("", response_model=UnsubscribePublic, responses=problem_responses(400),
             summary="One-click unsubscribe (RFC 8058): stop these emails")
async def unsubscribe(request: Request, token: str, uow: UowDep) -> UnsubscribePublic:
    citizen, topic = _read(request, token)
    now = datetime.now(UTC)
    row = await uow.session.get(Consent, (citizen, topic, Channel.EMAIL.value))
    row = row or Consent(citizen_id=citizen, topic=topic, channel=Channel.EMAIL.value,
                         granted=False, updated_at=now)
    row.granted, row.updated_at = False, now
    uow.session.add(row)
    await uow.commit()
    return UnsubscribePublic(topic=topic, description=TOPICS[topic].description,
                             channel=Channel.EMAIL.value, unsubscribed=True)
