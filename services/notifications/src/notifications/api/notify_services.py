"""Admin API for GOV.UK Notify services and their API keys: ``/api/v1/notify-services``.

Admins only. An API key is shown whole once, in the answer that issues it; lists show no
secrets. Revoking is idempotent, is recorded (who, when), and this process refuses the key
at once (its key cache forgets the service); other replicas refuse it within
``NOTIFICATIONS_NOTIFY_KEY_CACHE_SECONDS``. Errors are problem+json.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from notifications.api.deps import RuntimeDep, SettingsDep
from notifications.application import notify_callback_worker, notify_services
from notifications.application.notify_auth import forget_after_commit
from notifications.domain.notify import KeyType
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.tables import (
    NotifyApiKey,
    NotifyReplyTo,
    NotifyService,
    NotifySmsSender,
)
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import AdminPrincipal
from servicekit.problems import problem_responses

PREFIX = "/api/v1/notify-services"
router = APIRouter(prefix=PREFIX, tags=["notify-services"])

ServiceId = Annotated[uuid.UUID, Path(description="The Notify service (its `iss`).")]
KeyId = Annotated[uuid.UUID, Path(description="The API key's id (not the key).")]
#: No control characters (a NUL is refused by PostgreSQL: a 500, not the caller's 422).
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=ONE_LINE)
]
TeamMember = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=ONE_LINE)]


class NotifyServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    team_members: list[TeamMember] = Field(
        default_factory=list,
        max_length=100,
        description="Email addresses and UK mobile numbers a team key may send to.",
    )
    email_from: EmailStr | None = Field(
        default=None, description="The From address of its emails (default: the council's)."
    )
    sms_sender: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{3,11}$")] | None = Field(
        default=None, description="The sender id of its texts (default: the council's)."
    )


class NotifyServicePublic(BaseModel):
    id: uuid.UUID
    name: str
    email_from: str
    sms_sender: str
    team_members: list[str]
    created_at: datetime
    created_by: str | None

    @classmethod
    def of(cls, service: NotifyService) -> NotifyServicePublic:
        return cls(
            id=service.id,
            name=service.name,
            email_from=service.email_from,
            sms_sender=service.sms_sender,
            team_members=notify_services.team_of(service),
            created_at=service.created_at,
            created_by=service.created_by,
        )


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Begins the key (lower-cased, `_` for other characters).")
    key_type: KeyType = Field(
        description="`normal` (live), `team` (only to the service's "
        "team members) or `test` (nothing is sent)."
    )


class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    name: str
    key_type: KeyType
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, key: NotifyApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            service_id=key.service_id,
            name=key.name,
            key_type=KeyType(key.key_type),
            created_at=key.created_at,
            created_by=key.created_by,
            revoked_at=key.revoked_at,
            revoked_by=key.revoked_by,
        )


class ApiKeyIssued(ApiKeyPublic):
    key: str = Field(
        description="The whole key, `{name}-{service id}-{secret}`, for Notify's "
        "clients. Shown only now: it cannot be read again."
    )


@router.get("", response_model=list[NotifyServicePublic], summary="Notify services")
async def list_services(db: ReadDbDep, principal: AdminPrincipal) -> list[NotifyServicePublic]:
    return [
        NotifyServicePublic.of(s)
        for s in await notify_services.list_services(NotifyServiceRepository(db))
    ]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NotifyServicePublic,
    summary="Create a Notify service",
)
async def create_service(
    body: NotifyServiceCreate,
    settings: SettingsDep,
    uow: UowDep,
    response: Response,
    principal: AdminPrincipal,
) -> NotifyServicePublic:
    service = await notify_services.register_service(
        NotifyServiceRepository(uow.db),
        name=body.name,
        team_members=body.team_members,
        email_from=str(body.email_from) if body.email_from else None,
        sms_sender=body.sms_sender,
        created_by=principal.subject,
        settings=settings,
    )
    response.headers["Location"] = f"{PREFIX}/{service.id}"
    return NotifyServicePublic.of(service)


@router.get("/{notify_service_id}", response_model=NotifyServicePublic, summary="A Notify service")
async def get_service(
    notify_service_id: ServiceId, db: ReadDbDep, principal: AdminPrincipal
) -> NotifyServicePublic:
    return NotifyServicePublic.of(
        await notify_services.get_service(NotifyServiceRepository(db), notify_service_id)
    )


@router.post(
    "/{notify_service_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyIssued,
    summary="Issue an API key (shown once)",
)
async def issue_key(
    notify_service_id: ServiceId,
    body: ApiKeyCreate,
    uow: UowDep,
    response: Response,
    principal: AdminPrincipal,
) -> ApiKeyIssued:
    key, api_key = await notify_services.issue_api_key(
        NotifyServiceRepository(uow.db),
        service_id=notify_service_id,
        name=body.name,
        key_type=body.key_type,
        created_by=principal.subject,
    )
    response.headers["Location"] = f"{PREFIX}/{notify_service_id}/api-keys/{key.id}"
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyIssued(**ApiKeyPublic.of(key).model_dump(), key=api_key)


@router.get(
    "/{notify_service_id}/api-keys",
    response_model=list[ApiKeyPublic],
    summary="A service's API keys, revoked ones too (no secrets)",
)
async def list_keys(
    notify_service_id: ServiceId, db: ReadDbDep, principal: AdminPrincipal
) -> list[ApiKeyPublic]:
    return [
        ApiKeyPublic.of(k)
        for k in await notify_services.list_api_keys(
            NotifyServiceRepository(db), service_id=notify_service_id
        )
    ]


@router.get(
    "/{notify_service_id}/api-keys/{api_key_id}",
    response_model=ApiKeyPublic,
    summary="An API key (no secret)",
)
async def get_key(
    notify_service_id: ServiceId, api_key_id: KeyId, db: ReadDbDep, principal: AdminPrincipal
) -> ApiKeyPublic:
    return ApiKeyPublic.of(
        await notify_services.get_api_key(
            NotifyServiceRepository(db), service_id=notify_service_id, key_id=api_key_id
        )
    )


@router.post(
    "/{notify_service_id}/api-keys/{api_key_id}/revoke",
    response_model=ApiKeyPublic,
    summary="Revoke an API key (idempotent; refused at once by this replica, by "
    "others within NOTIFICATIONS_NOTIFY_KEY_CACHE_SECONDS)",
)
async def revoke_key(
    notify_service_id: ServiceId,
    api_key_id: KeyId,
    runtime: RuntimeDep,
    uow: UowDep,
    principal: AdminPrincipal,
) -> ApiKeyPublic:
    services = NotifyServiceRepository(uow.db)
    key, _ = await notify_services.revoke_api_key(
        services, service_id=notify_service_id, key_id=api_key_id, revoked_by=principal.subject
    )
    forget_after_commit(services, runtime.notify_key_cache, notify_service_id)
    return ApiKeyPublic.of(key)


# -- reply-to addresses and text message senders (Notify's email_reply_to_id, sms_sender_id)
class ReplyToCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email_address: EmailStr = Field(description="Where replies to the service's emails go.")
    is_default: bool = Field(
        default=False,
        description="The Reply-To of emails sent without `email_reply_to_id` (the first "
        "address is the default anyway).",
    )


class ReplyToPublic(BaseModel):
    id: uuid.UUID = Field(description="Notify's `email_reply_to_id`.")
    service_id: uuid.UUID
    email_address: str
    is_default: bool
    created_at: datetime

    @classmethod
    def of(cls, row: NotifyReplyTo) -> ReplyToPublic:
        return cls(
            id=row.id,
            service_id=row.service_id,
            email_address=row.email_address,
            is_default=row.is_default,
            created_at=row.created_at,
        )


class SmsSenderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sms_sender: Annotated[str, Field(pattern=r"^([A-Za-z0-9]{3,11}|\+?[0-9]{6,15})$")] = Field(
        description="The sender texts show: 3 to 11 letters and digits, or a phone number "
        "(texts sent to that number arrive as this service's received texts)."
    )
    is_default: bool = Field(
        default=False,
        description="The sender of texts sent without `sms_sender_id` (at most 11 characters).",
    )

    @model_validator(mode="after")
    def _default_fits(self) -> SmsSenderCreate:
        if self.is_default and len(self.sms_sender) > 11:
            raise ValueError("a default sender has at most 11 characters")
        return self


class SmsSenderPublic(BaseModel):
    id: uuid.UUID = Field(description="Notify's `sms_sender_id`.")
    service_id: uuid.UUID
    sms_sender: str
    is_default: bool
    created_at: datetime

    @classmethod
    def of(cls, row: NotifySmsSender) -> SmsSenderPublic:
        return cls(
            id=row.id,
            service_id=row.service_id,
            sms_sender=row.sms_sender,
            is_default=row.is_default,
            created_at=row.created_at,
        )


@router.get(
    "/{notify_service_id}/reply-to-addresses",
    response_model=list[ReplyToPublic],
    summary="A service's email reply-to addresses",
)
async def list_reply_tos(
    notify_service_id: ServiceId, db: ReadDbDep, principal: AdminPrincipal
) -> list[ReplyToPublic]:
    rows = await notify_services.list_reply_tos(
        NotifyServiceRepository(db), service_id=notify_service_id
    )
    return [ReplyToPublic.of(r) for r in rows]


@router.post(
    "/{notify_service_id}/reply-to-addresses",
    status_code=status.HTTP_201_CREATED,
    response_model=ReplyToPublic,
    summary="Add an email reply-to address (its id is Notify's email_reply_to_id)",
)
async def add_reply_to(
    notify_service_id: ServiceId,
    body: ReplyToCreate,
    runtime: RuntimeDep,
    uow: UowDep,
    principal: AdminPrincipal,
) -> ReplyToPublic:
    services = NotifyServiceRepository(uow.db)
    row = await notify_services.add_reply_to(
        services,
        service_id=notify_service_id,
        email_address=str(body.email_address),
        is_default=body.is_default,
        created_by=principal.subject,
    )
    forget_after_commit(services, runtime.notify_key_cache, notify_service_id)
    return ReplyToPublic.of(row)


@router.get(
    "/{notify_service_id}/sms-senders",
    response_model=list[SmsSenderPublic],
    summary="A service's text message senders",
)
async def list_sms_senders(
    notify_service_id: ServiceId, db: ReadDbDep, principal: AdminPrincipal
) -> list[SmsSenderPublic]:
    rows = await notify_services.list_sms_senders(
        NotifyServiceRepository(db), service_id=notify_service_id
    )
    return [SmsSenderPublic.of(r) for r in rows]


@router.post(
    "/{notify_service_id}/sms-senders",
    status_code=status.HTTP_201_CREATED,
    response_model=SmsSenderPublic,
    summary="Add a text message sender (its id is Notify's sms_sender_id)",
)
async def add_sms_sender(
    notify_service_id: ServiceId,
    body: SmsSenderCreate,
    runtime: RuntimeDep,
    uow: UowDep,
    principal: AdminPrincipal,
) -> SmsSenderPublic:
    services = NotifyServiceRepository(uow.db)
    row = await notify_services.add_sms_sender(
        services,
        service_id=notify_service_id,
        sms_sender=body.sms_sender,
        is_default=body.is_default,
        created_by=principal.subject,
    )
    forget_after_commit(services, runtime.notify_key_cache, notify_service_id)
    return SmsSenderPublic.of(row)


# -- callbacks: delivery receipts and received texts, POSTed to the calling service --------
CallbackKind = Annotated[
    Literal["delivery-status", "received-text"],
    Path(description="`delivery-status` (receipts) or `received-text` (inbound SMS)."),
]


class CallbackSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(max_length=2000, pattern=ONE_LINE)] = Field(
        description="https on port 443, resolving to public addresses only (as partner webhooks)."
    )
    bearer_token: Annotated[
        str, StringConstraints(min_length=10, max_length=255, pattern=r"^[\x21-\x7e]+$")
    ] = Field(description="Sent as `Authorization: Bearer …` (Notify: at least 10 characters).")


class CallbackPublic(BaseModel):
    service_id: uuid.UUID
    kind: str
    url: str | None = Field(description="Null: no callback of this kind.")


@router.put(
    "/{notify_service_id}/callbacks/{kind}",
    response_model=CallbackPublic,
    summary="Set a callback (delivery receipts or received texts) of a Notify service",
    responses=problem_responses((400, "The URL is refused (the webhooks' SSRF guard)")),
)
async def set_callback(
    notify_service_id: ServiceId,
    kind: CallbackKind,
    body: CallbackSet,
    settings: SettingsDep,
    uow: UowDep,
    principal: AdminPrincipal,
) -> CallbackPublic:
    services = NotifyServiceRepository(uow.db)
    await notify_callback_worker.set_callback(
        await services.get(notify_service_id),
        kind=kind,
        url=body.url,
        bearer_token=body.bearer_token,
        settings=settings,
    )
    return CallbackPublic(service_id=notify_service_id, kind=kind, url=body.url)


@router.delete(
    "/{notify_service_id}/callbacks/{kind}",
    response_model=CallbackPublic,
    summary="Remove a callback of a Notify service",
)
async def remove_callback(
    notify_service_id: ServiceId,
    kind: CallbackKind,
    settings: SettingsDep,
    uow: UowDep,
    principal: AdminPrincipal,
) -> CallbackPublic:
    services = NotifyServiceRepository(uow.db)
    await notify_callback_worker.set_callback(
        await services.get(notify_service_id),
        kind=kind,
        url=None,
        bearer_token=None,
        settings=settings,
    )
    return CallbackPublic(service_id=notify_service_id, kind=kind, url=None)
