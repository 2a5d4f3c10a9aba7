"""Admin: the gateway's API keys for partners, with their role and scopes (create: the key is
shown once; list; revoke)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.auth import AdminUser, require_admin
from staff_console.clients import GatewayApiKeysApi
from webkit.api import ApiError
from webkit.app import FrontendDep
from webkit.forms import FormErrors

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

#: The scopes partners' keys are given (docs/security.md); more can be typed in.
SCOPES = (
    ("open311", "Open311: report and read problems"),
    ("events:subscribe", "Subscribe to webhooks"),
    ("events:catalogue", "Catalogue events"),
    ("events:service-requests", "Service request events"),
)
ROLES = (("partner", "Partner"), ("admin", "Admin"))


async def _page(
    request: Request,
    frontend: FrontendDep,
    user: AdminUser,
    *,
    created: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    values: dict[str, object] | None = None,
    saved: str = "",
) -> Response:
    keys = await frontend.client(GatewayApiKeysApi, user).all()
    response = frontend.render(
        request,
        "admin/api_keys.html",
        status_code=400 if errors else (201 if created else 200),
        page_title="Gateway API keys",
        keys=keys,
        created=created,
        errors=errors,
        values=values or {"role": "partner", "scopes": []},
        scope_items=[{"value": v, "text": f"{t} ({v})"} for v, t in SCOPES],
        role_items=[{"value": v, "text": t} for v, t in ROLES],
        saved=saved,
    )
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/api-keys")
async def keys(
    request: Request, frontend: FrontendDep, user: AdminUser, saved: str = ""
) -> Response:
    return await _page(request, frontend, user, saved=saved)


@router.post("/api-keys")
async def create(request: Request, frontend: FrontendDep, user: AdminUser) -> Response:
    form = await request.form()
    known = {v for v, _ in SCOPES}
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str) and s in known]
    values: dict[str, object] = {
        "name": str(form.get("name", "")).strip(),
        "role": str(form.get("role", "")),
        "scopes": scopes,
    }
    errors = FormErrors()
    if not values["name"]:
        errors.add("name", "Enter a name for the key, for example the partner's")
    if values["role"] not in {v for v, _ in ROLES}:
        errors.add("role", "Choose the key's role")
    created = None
    if not errors:
        try:
            created = await frontend.client(GatewayApiKeysApi, user).create(
                str(values["name"]),
                str(values["role"]),
                scopes,
            )
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            errors.add("name", exc.detail or exc.title)
    return await _page(
        request, frontend, user, created=created, errors=errors or None, values=values
    )


@router.post("/api-keys/{key_id}/revoke")
async def revoke(key_id: str, request: Request, frontend: FrontendDep, user: AdminUser) -> Response:
    if not key_id.replace("-", "").replace("_", "").isalnum() or len(key_id) > 100:
        return frontend.error_page(request, 404, "Page not found")
    await frontend.client(GatewayApiKeysApi, user).revoke(key_id)
    return RedirectResponse("/admin/api-keys?saved=revoked", 303)
