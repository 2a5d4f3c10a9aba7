"""Notifications: templates with a preview (personalised, with the SMS fragment count; live
as the values are typed, see :mod:`staff_console.views.template_edit`), and,
for admins, Notify services and their API keys (issued and shown once, revoked)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.auth import (
    ADMIN_ROLES,
    AdminUser,
    StaffUser,
    require_admin,
    require_staff,
)
from staff_console.clients import NotifyServicesApi, TemplatesApi
from webkit.api import ApiError
from webkit.app import FrontendDep
from webkit.forms import FormErrors

router = APIRouter(prefix="/notifications", dependencies=[Depends(require_staff)])
admin = APIRouter(prefix="/notifications/services", dependencies=[Depends(require_admin)])

KEY_TYPES = (
    ("normal", "Live: sends to anyone"),
    ("team", "Team: sends to the service's team only"),
    ("test", "Test: pretends to send"),
)


@router.get("/templates")
async def templates(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    found = await frontend.client(TemplatesApi, user).all()
    return frontend.render(
        request,
        "notifications/templates.html",
        page_title="Templates",
        templates=found,
        is_admin=user.has_any(*ADMIN_ROLES),  # the Notify services link: admins only
    )


async def _template_page(
    request: Request,
    frontend: Any,
    user: StaffUser,
    template_id: str,
    values: dict[str, str],
    *,
    preview: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    saved: str = "",
) -> Response:
    found = await frontend.client(TemplatesApi, user).one(template_id)
    response: Response = frontend.render(
        request,
        "notifications/template.html",
        status_code=400 if errors else 200,
        page_title=found["name"],
        item=found,
        values=values,
        preview=preview,
        errors=errors,
        saved=saved if saved.isdigit() else "",
    )
    return response


@router.get("/templates/{template_id}")
async def template(
    template_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    saved: str = "",
) -> Response:
    return await _template_page(request, frontend, user, str(template_id), {}, saved=saved)


@router.post("/templates/{template_id}")
async def preview(
    template_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    found = await frontend.client(TemplatesApi, user).one(str(template_id))
    values = {
        name: str(form.get(f"p-{name}", "")).strip() for name in found.get("placeholders", [])
    }
    errors = FormErrors()
    for name, value in values.items():
        if not value:
            errors.add(f"p-{name}", f"Enter a value for (({name}))")
    shown = None
    if not errors:
        try:
            shown = await frontend.client(TemplatesApi, user).preview(str(template_id), values)
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise
            errors.add("p-", exc.detail or exc.title, None)
    return await _template_page(
        request, frontend, user, str(template_id), values, preview=shown, errors=errors or None
    )


# -- Notify services and API keys (admins) ----------------------------------------------------
@admin.get("")
async def services(request: Request, frontend: FrontendDep, user: AdminUser) -> Response:
    found = await frontend.client(NotifyServicesApi, user).all()
    return frontend.render(
        request, "notifications/services.html", page_title="Notify services", services=found
    )


@admin.post("")
async def create_service(request: Request, frontend: FrontendDep, user: AdminUser) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    errors = FormErrors()
    if not name:
        errors.add("name", "Enter the service's name")
    else:
        try:
            made = await frontend.client(NotifyServicesApi, user).create(name)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            errors.add("name", exc.errors.get("name") or exc.detail or exc.title)
        else:
            return RedirectResponse(f"/notifications/services/{made['id']}", 303)
    found = await frontend.client(NotifyServicesApi, user).all()
    return frontend.render(
        request,
        "notifications/services.html",
        status_code=400,
        page_title="Notify services",
        services=found,
        name=name,
        errors=errors,
    )


async def _service_page(
    request: Request,
    frontend: Any,
    user: AdminUser,
    service_id: str,
    *,
    issued: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    saved: str = "",
) -> Response:
    api = frontend.client(NotifyServicesApi, user)
    found = await api.one(service_id)
    keys = await api.keys(service_id)
    response: Response = frontend.render(
        request,
        "notifications/service.html",
        status_code=400 if errors else (201 if issued else 200),
        page_title=found["name"],
        service=found,
        keys=keys,
        issued=issued,
        errors=errors,
        values=values or {"key_type": "normal"},
        key_types=[{"value": v, "text": t} for v, t in KEY_TYPES],
        saved=saved,
    )
    # a key is shown once: never from a cache
    response.headers["cache-control"] = "no-store"
    return response


@admin.get("/{service_id}")
async def service(
    service_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: AdminUser,
    saved: str = "",
) -> Response:
    return await _service_page(request, frontend, user, str(service_id), saved=saved)


@admin.post("/{service_id}/api-keys")
async def issue_key(
    service_id: uuid.UUID, request: Request, frontend: FrontendDep, user: AdminUser
) -> Response:
    form = await request.form()
    values = {
        "name": str(form.get("name", "")).strip(),
        "key_type": str(form.get("key_type", "")),
    }
    errors = FormErrors()
    if not values["name"]:
        errors.add("name", "Enter a name for the key")
    if values["key_type"] not in {v for v, _ in KEY_TYPES}:
        errors.add("key_type", "Choose the type of key")
    issued = None
    if not errors:
        try:
            issued = await frontend.client(NotifyServicesApi, user).issue_key(
                str(service_id), values["name"], values["key_type"]
            )
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            errors.add("name", exc.errors.get("name") or exc.detail or exc.title)
    return await _service_page(
        request,
        frontend,
        user,
        str(service_id),
        issued=issued,
        errors=errors or None,
        values=values,
    )


@admin.post("/{service_id}/api-keys/{key_id}/revoke")
async def revoke_key(
    service_id: uuid.UUID,
    key_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: AdminUser,
) -> Response:
    await frontend.client(NotifyServicesApi, user).revoke_key(str(service_id), str(key_id))
    return RedirectResponse(f"/notifications/services/{service_id}?saved=revoked", 303)
