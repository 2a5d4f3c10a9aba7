"""The SMS provider's webhook for received texts: ``POST /api/v1/sms/inbound``.

Authenticated by the provider's shared token (``NOTIFICATIONS_SMS_INBOUND_TOKEN``) in
``X-Provider-Token`` (through the gateway, which reads ``Authorization`` as a platform
credential) or ``Authorization: Bearer`` (a provider calling the service directly, as
GOV.UK Notify's own inbound callbacks do). Bodies: ``{"from", "to", "body", "id"}`` (the
generic provider; ``message``/``content`` for ``body``) or Notify's inbound callback
(``source_number``, ``destination_number``, ``message``, ``id``, ``date_received``). The
dev sink (``make run``) takes the development token. Errors are problem+json."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from notifications.api.deps import SettingsDep
from notifications.application.notify_callbacks import queue_received_text
from notifications.application.notify_received import receive_text
from notifications.persistence.notify_callbacks import NotifyCallbackRepository
from notifications.persistence.notify_received import ReceivedTextRepository
from servicekit.deps import UowDep
from servicekit.errors import Forbidden, NotFound
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/sms", tags=["sms-provider"])

Number = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()\-]{3,24}$")]


class InboundSms(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: Number | None = Field(default=None, alias="from")
    to: Number | None = None
    body: Annotated[str, StringConstraints(max_length=2000)] | None = None
    message: Annotated[str, StringConstraints(max_length=2000)] | None = None
    content: Annotated[str, StringConstraints(max_length=2000)] | None = None
    source_number: Number | None = None
    destination_number: Number | None = None
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    reference: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    date_received: datetime | None = None

    @model_validator(mode="after")
    def _complete(self) -> InboundSms:
        if not (self.from_ or self.source_number):
            raise ValueError("from (or source_number) is required")
        if not (self.to or self.destination_number):
            raise ValueError("to (or destination_number) is required")
        if (self.body or self.message or self.content) is None:
            raise ValueError("body (or message) is required")
        return self


class InboundAccepted(BaseModel):
    id: str | None = Field(description="The received text's id; null if seen before.")


def _token(x_provider_token: str | None, authorization: str | None) -> str:
    if x_provider_token:
        return x_provider_token
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@router.post(
    "/inbound",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InboundAccepted,
    summary="A received text message, from the SMS provider (its token required)",
    responses=problem_responses(
        (403, "Not the SMS provider's token"), (404, "Received texts are not set up")
    ),
)
async def inbound_sms(
    body: InboundSms,
    request: Request,
    settings: SettingsDep,
    uow: UowDep,
    x_provider_token: Annotated[str | None, Header()] = None,
) -> Any:
    expected = settings.inbound_token()
    if expected is None:
        raise NotFound("Received texts are not set up.")
    given = _token(x_provider_token, request.headers.get("authorization"))
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("Not the SMS provider's token.")
    text = await receive_text(
        ReceivedTextRepository(uow.db),
        settings,
        from_number=str(body.from_ or body.source_number),
        to_number=str(body.to or body.destination_number),
        content=str(body.body if body.body is not None else body.message or body.content or ""),
        provider_reference=body.id or body.reference,
        received_at=body.date_received,
    )
    if text is not None:  # the service's received-text callback, in the same transaction
        await queue_received_text(NotifyCallbackRepository(uow.db), text)
    return InboundAccepted(id=str(text.id) if text else None)
