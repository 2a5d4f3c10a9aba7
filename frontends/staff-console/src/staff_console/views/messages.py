"""Sent messages: every email and text the platform sent or is sending (event-driven and
through Notify's ``/v2``), newest first, filtered by reference, status and channel, a page
at a time; one message with its recipient, content and times until they are redacted."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from staff_console.auth import StaffUser, require_staff
from staff_console.message_clients import MessagesApi
from webkit.api import ApiError
from webkit.app import FrontendDep
from webkit.forms import FormErrors

router = APIRouter(prefix="/notifications/messages", dependencies=[Depends(require_staff)])

LONDON = ZoneInfo("Europe/London")
#: Notify's statuses as staff read them, with their tag colours.
STATUSES: dict[str, tuple[str, str]] = {
    "created": ("Queued", "grey"),
    "sending": ("Sending", "light-blue"),
    "delivered": ("Delivered", "green"),
    "temporary-failure": ("Temporary failure", "orange"),
    "permanent-failure": ("Permanent failure", "red"),
    "technical-failure": ("Technical failure", "red"),
}
STATUS_FILTERS = {"failed": "Failed (any failure)"} | {k: v[0] for k, v in STATUSES.items()}
CHANNELS = {"email": "Email", "sms": "Text message"}
FIELDS = ("reference", "status", "channel")


def status_label(status: str) -> tuple[str, str]:
    return STATUSES.get(status, (status.replace("-", " ").capitalize(), "grey"))


def when(value: str | None) -> str:
    """``2026-12-01T10:00:00Z`` → ``1 Dec 2026, 10:00:05`` (London time)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(LONDON)
    except ValueError:
        return value
    return f"{moment.day} {moment:%b %Y, %H:%M:%S}"


def _items(options: dict[str, str], any_text: str) -> list[dict[str, str]]:
    return [{"value": "", "text": any_text}] + [{"value": k, "text": v} for k, v in options.items()]


def _page_link(filters: dict[str, str], page: int) -> str:
    return "/notifications/messages?" + urlencode(
        {**{k: v for k, v in filters.items() if v}, "page": page}
    )


@router.get("")
async def messages(
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    reference: str = "",
    status: str = "",
    channel: str = "",
    page: str = "",
) -> Response:
    filters = {"reference": reference.strip(), "status": status, "channel": channel}
    errors = FormErrors()
    found: dict[str, Any] = {"items": [], "next_page": None, "previous_page": None, "page": 1}
    try:
        found = await frontend.client(MessagesApi, user).find(**filters, page=page)
    except ApiError as exc:
        if exc.status != 400:
            raise
        for name, message in exc.errors.items():
            if name in FIELDS:
                errors.add(name, f"{name.capitalize()} {message}")
            else:  # the page number (from the address): no field to point at
                errors.add(name, f"The {name.replace('_', ' ')} {message}", None)
        if not exc.errors:
            errors.add("reference", exc.detail or exc.title)
    return frontend.render(
        request,
        "notifications/messages.html",
        status_code=400 if errors else 200,
        page_title="Sent messages",
        errors=errors or None,
        items=found["items"],
        page=found["page"],
        next_href=_page_link(filters, found["next_page"]) if found["next_page"] else None,
        previous_href=_page_link(filters, found["previous_page"])
        if found["previous_page"]
        else None,
        filtered=any(filters.values()),
        status_items=_items(STATUS_FILTERS, "Any status"),
        channel_items=_items(CHANNELS, "Email or text message"),
        channels=CHANNELS,
        status_label=status_label,
        when=when,
        **filters,
    )


@router.get("/{message_id}")
async def message(
    message_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    found = await frontend.client(MessagesApi, user).one(str(message_id))
    return frontend.render(
        request,
        "notifications/message.html",
        page_title="Email" if found["channel"] == "email" else "Text message",
        item=found,
        channels=CHANNELS,
        status_label=status_label,
        when=when,
    )
