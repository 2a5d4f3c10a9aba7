"""Partner webhooks (``/webhooks``): subscriptions, their delivery log, replay and secret
rotation. One set of pages for two audiences: an admin sees and manages every partner's
subscriptions (the API gives staff who are not admins none), a signed-in partner only their
own (the partner area; the API filters by the caller). Every other console page stays
staff-only, so a partner is turned away there."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.partner_clients import WebhooksApi
from webkit.api import ApiError
from webkit.app import FrontendDep, User, require_role
from webkit.forms import FormErrors

WEBHOOK_ROLES = ("admin", "partner")
require_webhooks = require_role(*WEBHOOK_ROLES)
WebhookUser = Annotated[User, Depends(require_webhooks)]
router = APIRouter(prefix="/webhooks", dependencies=[Depends(require_webhooks)])

#: The events partners may subscribe to (the notifications service's allow-list) and the
#: scope each needs; the API refuses the others.
EVENT_TYPES = (
    ("ServicePublished", "A service is published"),
    ("ServiceUpdated", "A published service changes"),
    ("ServiceSuspended", "A service is suspended"),
    ("ServiceRetired", "A service is retired"),
    ("ServiceRequestStatusChanged", "A reported problem's status changes"),
)
SAVED = {"replayed": "Delivery queued to be sent again", "enabled": "Subscription enabled"}


def _short(event_type: str) -> str:
    """``uk.gov.milton-keynes....ServicePublished.v1`` → ``ServicePublished``."""
    parts = [p for p in event_type.split(".") if p and not p[1:].isdigit()]
    return parts[-1] if parts else event_type


async def _list_page(
    request: Request,
    frontend: FrontendDep,
    user: WebhookUser,
    *,
    created: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    subscriptions = await frontend.client(WebhooksApi, user).all()
    for sub in subscriptions:
        sub["events"] = [_short(t) for t in sub["event_types"]]
    response: Response = frontend.render(
        request,
        "webhooks/list.html",
        status_code=400 if errors else (201 if created else 200),
        page_title="Webhook subscriptions",
        subscriptions=subscriptions,
        created=created,
        errors=errors,
        values=values or {"url": "", "event_types": []},
        event_items=[{"value": v, "text": t} for v, t in EVENT_TYPES],
    )
    response.headers["cache-control"] = "no-store"  # a secret is shown once
    return response


@router.get("")
async def subscriptions(request: Request, frontend: FrontendDep, user: WebhookUser) -> Response:
    return await _list_page(request, frontend, user)


@router.post("")
async def create(request: Request, frontend: FrontendDep, user: WebhookUser) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "url": str(form.get("url", "")).strip(),
        "event_types": [str(v) for v in form.getlist("event_types")],
    }
    errors = FormErrors()
    if not values["url"]:
        errors.add("url", "Enter the address of your endpoint, starting https://")
    elif len(values["url"]) > 2000:
        errors.add("url", "The address must be 2,000 characters or fewer")
    known = {v for v, _ in EVENT_TYPES}
    if not values["event_types"] or not set(values["event_types"]) <= known:
        errors.add("event_types", "Choose the events to send")
    created = None
    if not errors:
        try:
            created = await frontend.client(WebhooksApi, user).create(
                values["url"], values["event_types"]
            )
        except ApiError as exc:
            if exc.status not in (400, 403, 422):
                raise
            field = "event_types" if exc.status == 403 or "event" in exc.detail else "url"
            errors.add(field, exc.errors.get("url") or exc.detail or exc.title)
    return await _list_page(
        request, frontend, user, created=created, errors=errors or None, values=values
    )


async def _one_page(
    request: Request,
    frontend: FrontendDep,
    user: WebhookUser,
    subscription_id: str,
    *,
    rotated: dict[str, Any] | None = None,
    saved: str = "",
) -> Response:
    api = frontend.client(WebhooksApi, user)
    sub = await api.one(subscription_id)
    sub["events"] = [_short(t) for t in sub["event_types"]]
    deliveries = await api.deliveries(subscription_id)
    for d in deliveries:
        d["event"] = _short(d["event_type"])
    response: Response = frontend.render(
        request,
        "webhooks/one.html",
        page_title="Webhook subscription",
        sub=sub,
        deliveries=deliveries,
        rotated=rotated,
        saved=SAVED.get(saved, ""),
    )
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/{subscription_id}")
async def subscription(
    subscription_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: WebhookUser,
    saved: str = "",
) -> Response:
    return await _one_page(request, frontend, user, str(subscription_id), saved=saved)


@router.post("/{subscription_id}/rotate-secret")
async def rotate(
    subscription_id: uuid.UUID, request: Request, frontend: FrontendDep, user: WebhookUser
) -> Response:
    rotated = await frontend.client(WebhooksApi, user).rotate_secret(str(subscription_id))
    return await _one_page(request, frontend, user, str(subscription_id), rotated=rotated)


@router.post("/{subscription_id}/enable")
async def enable(
    subscription_id: uuid.UUID, request: Request, frontend: FrontendDep, user: WebhookUser
) -> Response:
    await frontend.client(WebhooksApi, user).enable(str(subscription_id))
    return RedirectResponse(f"/webhooks/{subscription_id}?saved=enabled", 303)


@router.post("/{subscription_id}/deliveries/{delivery_id}/replay")
async def replay(
    subscription_id: uuid.UUID,
    delivery_id: str,
    request: Request,
    frontend: FrontendDep,
    user: WebhookUser,
) -> Response:
    await frontend.client(WebhooksApi, user).replay(str(subscription_id), delivery_id)
    return RedirectResponse(f"/webhooks/{subscription_id}?saved=replayed", 303)
