"""Sent messages for staff: the filters (each checked, a bad one named in a 400), a page
of messages newest first with the recipient masked, and one message whole.

A message's recipient and content are personal data: the list masks the recipient
(``j…@example.com``, ``+44…123``) and never carries a subject or body; one message shows
them to staff until it is redacted (erasure or retention), after which there is nothing
to show. Statuses are Notify's; ``failed`` stands for its three failures, as on ``/v2``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notifications.domain.notification import Channel, Status
from notifications.persistence.sent_messages import MessageFilter, SentMessageRepository
from servicekit.errors import DomainError, NotFound

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_PAGE = 10_000  # 2 million rows deep at the largest page: beyond, narrow the filter
MAX_REFERENCE = 1000  # the column's length
FILTERS = ("reference", "status", "channel", "template_id", "service_id", "page", "page_size")
FAILED = (Status.TEMPORARY_FAILURE, Status.PERMANENT_FAILURE, Status.TECHNICAL_FAILURE)
STATUS_CHOICES = (*(s.value for s in Status), "failed")


class BadFilter(DomainError):
    status, code, title = 400, "bad-filter", "Bad filter"


class MessageNotFound(NotFound):
    code, title = "message-not-found", "Message not found"


@dataclass(frozen=True)
class Query:
    filter: MessageFilter
    page: int
    page_size: int


def parse_query(params: Mapping[str, list[str]]) -> Query:
    """The filters of ``GET /api/v1/messages`` from its query string (each name: its
    values); every problem is named (``errors``: field and message), nothing is ignored."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    for name in params:
        if name not in FILTERS:
            bad(name, f"is not a filter; the filters are {', '.join(FILTERS)}")
    for name, values in params.items():
        if name in FILTERS and name != "status" and len(values) > 1:
            bad(name, "is given more than once")

    def one(name: str) -> str | None:
        values = params.get(name) or []
        return values[0] if values else None

    reference = one("reference")
    if reference is not None and not 1 <= len(reference) <= MAX_REFERENCE:
        bad("reference", f"must be 1 to {MAX_REFERENCE} characters")
        reference = None
    statuses: set[str] = set()
    for value in params.get("status", []):
        for part in value.split(","):  # ?status=a,b as well as ?status=a&status=b
            if part == "failed":
                statuses.update(s.value for s in FAILED)
            elif part in {s.value for s in Status}:
                statuses.add(part)
            else:
                bad("status", f"must be one of {', '.join(STATUS_CHOICES)}")
    channel = one("channel")
    if channel is not None and channel not in {c.value for c in Channel}:
        bad("channel", f"must be one of {', '.join(c.value for c in Channel)}")

    def uuid_of(name: str) -> uuid.UUID | None:
        value = one(name)
        if value is None:
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            bad(name, "must be a UUID")
            return None

    def number(name: str, default: int, top: int) -> int:
        value = one(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= top:
            bad(name, f"must be a whole number from 1 to {top}")
            return default
        return int(value)

    template_id, service_id = uuid_of("template_id"), uuid_of("service_id")
    page = number("page", 1, MAX_PAGE)
    page_size = number("page_size", PAGE_SIZE, MAX_PAGE_SIZE)
    if errors:
        names = ", ".join(sorted({e["field"] for e in errors}))
        raise BadFilter(f"Bad filter(s): {names}", errors=errors)
    return Query(
        MessageFilter(
            reference=reference,
            statuses=tuple(sorted(statuses)),
            channel=channel,
            template_id=template_id,
            service_id=service_id,
        ),
        page,
        page_size,
    )


def mask_recipient(recipient: str | None) -> str | None:
    """Enough to recognise an address, not to use it: ``j…@example.com``, ``+44…123``."""
    if not recipient:
        return None
    if "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        return f"{local[:1]}…@{domain}"
    return f"{recipient[:3]}…{recipient[-3:]}" if len(recipient) > 6 else "…"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    page: int
    page_size: int
    has_next: bool


async def list_messages(messages: SentMessageRepository, query: Query) -> Page:
    """A page, newest first; each row's recipient masked."""
    rows = await messages.page(
        query.filter, offset=(query.page - 1) * query.page_size, limit=query.page_size + 1
    )
    items = [
        {**row, "recipient": mask_recipient(row["recipient"])} for row in rows[: query.page_size]
    ]
    return Page(items, query.page, query.page_size, len(rows) > query.page_size)


async def get_message(messages: SentMessageRepository, message_id: uuid.UUID) -> dict[str, Any]:
    """The message whole (staff); once redacted, without recipient or content."""
    row = await messages.one(message_id)
    if row is None:
        raise MessageNotFound(f"No message {message_id}.")
    if row["redacted_at"] is not None:
        row.update(recipient=None, subject=None, body=None, html_body=None, text_body=None)
    return row
