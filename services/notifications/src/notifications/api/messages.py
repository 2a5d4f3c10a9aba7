"""Staff API for sent messages: ``/api/v1/messages`` (every message the platform sent or
is sending, event-driven and through Notify's ``/v2``, newest first, filtered, paged) and
``/api/v1/messages/{id}``. Staff only. A bad or unknown filter is a 400 problem naming it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from notifications.application import sent_messages
from notifications.persistence.sent_messages import SentMessageRepository
from servicekit.deps import ReadDbDep
from servicekit.identity import StaffPrincipal
from servicekit.problems import problem_responses

PREFIX = "/api/v1/messages"
router = APIRouter(prefix=PREFIX, tags=["messages"])


class MessageSummary(BaseModel):
    id: uuid.UUID
    channel: str = Field(description="email or sms")
    recipient: str | None = Field(
        description="Masked (`j…@example.com`, `+44…123`); null once redacted."
    )
    status: str = Field(description="Notify's: created, sending, delivered, *-failure.")
    reference: str | None
    service_id: uuid.UUID | None = Field(description="The Notify service (null: an event's).")
    key_type: str | None = Field(description="The Notify key type (null: an event's).")
    template_id: uuid.UUID | None
    template_version: int | None
    template_name: str | None
    source_event_type: str | None = Field(description="The platform event it tells of.")
    simulated: bool
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    completed_at: datetime | None = Field(description="When it reached its final status.")
    redacted_at: datetime | None = Field(
        description="When its recipient and content were forgotten (retention or erasure)."
    )


class MessagePage(BaseModel):
    items: list[MessageSummary]
    page: int
    page_size: int
    next_page: int | None = Field(description="Null on the last page.")
    previous_page: int | None


class MessagePublic(MessageSummary):
    recipient: str | None = Field(description="The address or number; null once redacted.")
    subject: str | None
    body: str | None = Field(description="As sent (an email's plain text); null once redacted.")
    attempts: int
    last_error: str | None
    scheduled_for: datetime | None


@router.get(
    "",
    response_model=MessagePage,
    summary="Sent messages, newest first (staff)",
    responses=problem_responses((400, "A bad or unknown filter (each one named)")),
)
async def list_messages(
    request: Request,
    db: ReadDbDep,
    staff: StaffPrincipal,
    reference: Annotated[str | None, Query(description="The sender's reference, exactly.")] = None,
    status: Annotated[
        list[str] | None,
        Query(description=f"Any of {', '.join(sent_messages.STATUS_CHOICES)} (repeat or commas)."),
    ] = None,
    channel: Annotated[str | None, Query(description="email or sms")] = None,
    template_id: Annotated[str | None, Query(description="A template's id")] = None,
    service_id: Annotated[str | None, Query(description="A Notify service's id")] = None,
    page: Annotated[str | None, Query(description="From 1")] = None,
    page_size: Annotated[
        str | None, Query(description=f"1 to {sent_messages.MAX_PAGE_SIZE}, default 50")
    ] = None,
) -> MessagePage:
    # The parameters above document the filters; they are read (and refused with a 400
    # naming each bad one, unknown names too) from the query string itself.
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    query = sent_messages.parse_query(params)
    found = await sent_messages.list_messages(SentMessageRepository(db), query)
    return MessagePage(
        items=[MessageSummary(**_fields(MessageSummary, row)) for row in found.items],
        page=found.page,
        page_size=found.page_size,
        next_page=found.page + 1 if found.has_next else None,
        previous_page=found.page - 1 if found.page > 1 else None,
    )


@router.get(
    "/{message_id}",
    response_model=MessagePublic,
    summary="A sent message, with its recipient and content until they are redacted (staff)",
)
async def get_message(
    message_id: Annotated[uuid.UUID, Path(description="The message's (notification's) id.")],
    db: ReadDbDep,
    staff: StaffPrincipal,
) -> MessagePublic:
    row = await sent_messages.get_message(SentMessageRepository(db), message_id)
    row["body"] = row["text_body"] if row.get("text_body") else row["body"]
    return MessagePublic(**_fields(MessagePublic, row))


def _fields(model: type[BaseModel], row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in model.model_fields}
