"""Staff API for templates: ``/api/v1/templates`` (create, edit as a new version, read,
list, preview). Errors are problem+json."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field

from notifications.api.deps import SettingsDep
from notifications.application import templates
from notifications.application.templates import MAX_VERSION
from notifications.domain import templating
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.templates import TemplateRepository
from servicekit.deps import ReadDbDep, UowDep
from servicekit.errors import DomainError
from servicekit.identity import StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


class MissingPersonalisationProblem(DomainError):
    status, code, title = 400, "missing-personalisation", "Missing personalisation"


class TemplateCreate(BaseModel):
    service_id: uuid.UUID | None = Field(
        default=None,
        description="The Notify service it belongs to; by default the "
        "council's own (NOTIFICATIONS_NOTIFY_DEFAULT_SERVICE_ID).",
    )
    type: Literal["email", "sms"]
    name: str = Field(min_length=1, max_length=255)
    subject: str | None = Field(
        default=None, max_length=998, description="Email only; may contain placeholders."
    )
    body: str = Field(
        min_length=1,
        max_length=100_000,
        description="Notify's syntax: ((field)), ((field??text)), markdown.",
    )


class TemplateUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    subject: str | None = Field(default=None, max_length=998)
    body: str | None = Field(default=None, min_length=1, max_length=100_000)


class TemplatePublic(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    type: str
    name: str
    version: int
    subject: str | None
    body: str
    placeholders: list[str]
    created_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, view: templates.TemplateView) -> TemplatePublic:
        t, v = view.template, view.version
        return cls(
            id=t.id,
            service_id=t.service_id,
            type=t.template_type,
            name=v.name,
            version=v.version,
            subject=v.subject,
            body=v.body,
            placeholders=view.placeholders,
            created_by=v.created_by,
            created_at=v.created_at,
        )


class PreviewRequest(BaseModel):
    personalisation: dict[str, Any] = Field(default_factory=dict)
    subject: str | None = Field(
        default=None,
        max_length=998,
        description="An edit not saved yet: preview this subject instead (email only).",
    )
    body: str | None = Field(
        default=None,
        min_length=1,
        max_length=100_000,
        description="An edit not saved yet: preview this body instead (nothing is stored).",
    )
    show_missing: bool = Field(
        default=False,
        description="Show a placeholder without a value as written, `((name))`, instead of "
        "refusing the preview (a template being edited).",
    )


class SmsLength(BaseModel):
    encoding: str = Field(description="GSM-7 or UCS-2")
    length: int
    fragments: int
    too_long: bool


class PreviewPublic(BaseModel):
    subject: str | None
    body: str
    html: str | None = None
    text: str | None = Field(default=None, description="The plain-text part of the email.")
    sms: SmsLength | None = None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplatePublic,
    summary="Create a template (version 1)",
    responses=problem_responses(400),
)
async def create_template(
    body: TemplateCreate,
    settings: SettingsDep,
    uow: UowDep,
    response: Response,
    staff: StaffPrincipal,
) -> TemplatePublic:
    service_id = body.service_id or settings.notify_default_service_id
    view = await templates.create_template(
        TemplateRepository(uow.db),
        NotifyServiceRepository(uow.db),
        service_id=service_id,
        template_type=body.type,
        name=body.name,
        subject=body.subject,
        body=body.body,
        created_by=staff.subject,
    )
    response.headers["Location"] = f"/api/v1/templates/{view.template.id}"
    return TemplatePublic.of(view)


@router.get("", response_model=list[TemplatePublic], summary="Templates (current versions)")
async def list_templates(
    db: ReadDbDep,
    staff: StaffPrincipal,
    service_id: uuid.UUID | None = None,
    type: Literal["email", "sms"] | None = None,
) -> list[TemplatePublic]:
    views = await templates.list_templates(
        TemplateRepository(db), service_id=service_id, template_type=type
    )
    return [TemplatePublic.of(v) for v in views]


@router.get("/{template_id}", response_model=TemplatePublic, summary="A template")
async def get_template(
    template_id: uuid.UUID, db: ReadDbDep, staff: StaffPrincipal
) -> TemplatePublic:
    return TemplatePublic.of(
        await templates.get_template(TemplateRepository(db), template_id=template_id)
    )


@router.get(
    "/{template_id}/versions/{version}",
    response_model=TemplatePublic,
    summary="A version of a template",
)
async def get_template_version(
    template_id: uuid.UUID,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    db: ReadDbDep,
    staff: StaffPrincipal,
) -> TemplatePublic:
    return TemplatePublic.of(
        await templates.get_template(
            TemplateRepository(db), template_id=template_id, version=version
        )
    )


@router.put(
    "/{template_id}",
    response_model=TemplatePublic,
    summary="Edit a template: a new version",
    responses=problem_responses(400),
)
async def edit_template(
    template_id: uuid.UUID, body: TemplateUpdate, uow: UowDep, staff: StaffPrincipal
) -> TemplatePublic:
    view = await templates.edit_template(
        TemplateRepository(uow.db),
        template_id=template_id,
        name=body.name,
        subject=body.subject,
        body=body.body,
        created_by=staff.subject,
    )
    return TemplatePublic.of(view)


@router.post(
    "/{template_id}/preview",
    response_model=PreviewPublic,
    summary="Preview with personalisation (HTML and text, or SMS length), of a version "
    "or of an edit not saved yet",
    responses=problem_responses(400),
)
async def preview_template(
    template_id: uuid.UUID,
    body: PreviewRequest,
    db: ReadDbDep,
    staff: StaffPrincipal,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> PreviewPublic:
    view = await templates.get_template(
        TemplateRepository(db), template_id=template_id, version=version
    )
    if body.subject is not None or body.body is not None:
        if body.subject is not None and view.template.template_type != "email":
            raise templates.InvalidTemplate("A text message template has no subject.")
        view = templates.draft(view, subject=body.subject, body=body.body)
    personalisation = (
        templates.as_written(view, body.personalisation)
        if body.show_missing
        else body.personalisation
    )
    try:
        shown = templates.preview(view, personalisation)
    except templating.MissingPersonalisation as exc:
        raise MissingPersonalisationProblem(
            f"Missing personalisation: {', '.join(exc.names)}", missing=exc.names
        ) from None
    sms = (
        SmsLength(
            encoding=shown.sms.encoding,
            length=shown.sms.length,
            fragments=shown.sms.fragments,
            too_long=shown.sms.too_long,
        )
        if shown.sms
        else None
    )
    return PreviewPublic(
        subject=shown.subject, body=shown.body, html=shown.html, text=shown.text, sms=sms
    )
