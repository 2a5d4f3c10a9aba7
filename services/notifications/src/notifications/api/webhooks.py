"""Partner webhooks: ``/api/v1/webhook-subscriptions`` (partners and admins). A partner
needs the ``events:subscribe`` scope for every operation, and the scope of each event type
it subscribes to (``events:catalogue``, ``events:service-requests``: see
``application.webhooks.PARTNER_EVENTS``); admins need none. A partner sees only its own
subscriptions. Errors are problem+json."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from notifications.api.deps import SettingsDep
from notifications.application import webhooks as app_webhooks
from notifications.persistence.tables import WebhookSubscription
from notifications.persistence.webhooks import WebhookRepository
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import Principal, Role, require_scopes, scopes_openapi
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/webhook-subscriptions", tags=["webhooks"])
PartnerPrincipal = require_scopes(Role.PARTNER, Role.ADMIN, scopes=(app_webhooks.SUBSCRIBE_SCOPE,))
SCOPED = scopes_openapi(app_webhooks.SUBSCRIBE_SCOPE)


def _owner(principal: Principal) -> str | None:
    """Whose subscriptions the caller sees: admins all, a partner its own."""
    return None if principal.has_role(Role.ADMIN) else (principal.subject or "")


class SubscriptionCreate(BaseModel):
    url: str = Field(max_length=2000, description="An https:// endpoint.")
    event_types: list[str] = Field(
        min_length=1, description="CloudEvents types (or their short names, e.g. ServicePublished)."
    )


class SubscriptionPublic(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    status: str
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> SubscriptionPublic:
        return cls(
            id=sub.id,
            url=sub.url,
            event_types=sub.event_types.splitlines(),
            status=sub.status,
            disabled_reason=sub.disabled_reason,
            created_at=sub.created_at,
        )


class SubscriptionWithSecret(SubscriptionPublic):
    secret: str = Field(description="Verify signatures with it (shown only now).")
    previous_secret_valid_until: datetime | None = None


class DeliveryPublic(BaseModel):
    id: str = Field(description="The webhook-id header.")
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionWithSecret,
    summary="Subscribe an endpoint to event types",
    responses=problem_responses(400),
    openapi_extra=SCOPED,
)
async def create(
    body: SubscriptionCreate,
    settings: SettingsDep,
    uow: UowDep,
    response: Response,
    principal: Principal = PartnerPrincipal,
) -> SubscriptionWithSecret:
    sub = await app_webhooks.create_subscription(
        WebhookRepository(uow.db),
        owner=principal.subject or "",
        url=body.url,
        event_types=body.event_types,
        settings=settings,
        scopes=None if principal.has_role(Role.ADMIN) else principal.scopes,
    )
    response.headers["Location"] = f"/api/v1/webhook-subscriptions/{sub.id}"
    return SubscriptionWithSecret(**SubscriptionPublic.of(sub).model_dump(), secret=sub.secret)


@router.get(
    "", response_model=list[SubscriptionPublic], summary="My subscriptions", openapi_extra=SCOPED
)
async def list_subscriptions(
    db: ReadDbDep, principal: Principal = PartnerPrincipal
) -> list[SubscriptionPublic]:
    return [
        SubscriptionPublic.of(s)
        for s in await app_webhooks.list_subscriptions(WebhookRepository(db), _owner(principal))
    ]


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionPublic,
    summary="A subscription",
    openapi_extra=SCOPED,
)
async def get(
    subscription_id: uuid.UUID, db: ReadDbDep, principal: Principal = PartnerPrincipal
) -> SubscriptionPublic:
    return SubscriptionPublic.of(
        await app_webhooks.get_subscription(
            WebhookRepository(db), subscription_id, _owner(principal)
        )
    )


@router.delete(
    "/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unsubscribe (the delivery log goes too)",
    openapi_extra=SCOPED,
)
async def delete(
    subscription_id: uuid.UUID, uow: UowDep, principal: Principal = PartnerPrincipal
) -> Response:
    await app_webhooks.delete_subscription(
        WebhookRepository(uow.db), subscription_id, _owner(principal)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{subscription_id}/rotate-secret",
    response_model=SubscriptionWithSecret,
    summary="A new secret; the old one still signs for 24 hours",
    openapi_extra=SCOPED,
)
async def rotate(
    subscription_id: uuid.UUID, uow: UowDep, principal: Principal = PartnerPrincipal
) -> SubscriptionWithSecret:
    sub = await app_webhooks.rotate_secret(
        WebhookRepository(uow.db), subscription_id, _owner(principal)
    )
    return SubscriptionWithSecret(
        **SubscriptionPublic.of(sub).model_dump(),
        secret=sub.secret,
        previous_secret_valid_until=sub.previous_secret_until,
    )


@router.post(
    "/{subscription_id}/enable",
    response_model=SubscriptionPublic,
    summary="Enable a disabled subscription again",
    responses=problem_responses(400),
    openapi_extra=SCOPED,
)
async def enable(
    subscription_id: uuid.UUID,
    settings: SettingsDep,
    uow: UowDep,
    principal: Principal = PartnerPrincipal,
) -> SubscriptionPublic:
    return SubscriptionPublic.of(
        await app_webhooks.enable(
            WebhookRepository(uow.db), subscription_id, _owner(principal), settings=settings
        )
    )


@router.get(
    "/{subscription_id}/deliveries",
    response_model=list[DeliveryPublic],
    summary="The delivery log, newest first (100)",
    openapi_extra=SCOPED,
)
async def deliveries(
    subscription_id: uuid.UUID, db: ReadDbDep, principal: Principal = PartnerPrincipal
) -> list[DeliveryPublic]:
    rows = await app_webhooks.deliveries(
        WebhookRepository(db), subscription_id, _owner(principal), limit=100
    )
    return [DeliveryPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryPublic,
    summary="Send a delivery again (same webhook-id)",
    openapi_extra=SCOPED,
)
async def replay(
    subscription_id: uuid.UUID,
    delivery_id: str,
    uow: UowDep,
    principal: Principal = PartnerPrincipal,
) -> DeliveryPublic:
    delivery = await app_webhooks.replay(
        WebhookRepository(uow.db), subscription_id, delivery_id, _owner(principal)
    )
    return DeliveryPublic.model_validate(delivery, from_attributes=True)
