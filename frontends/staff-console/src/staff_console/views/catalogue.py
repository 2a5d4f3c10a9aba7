"""The catalogue: list and search (every status), create, edit with If-Match (a lost race
becomes a merge page, not an error), publish, suspend and retire with a reason, history."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.auth import StaffUser, require_staff
from staff_console.clients import CatalogueApi
from webkit.api import ApiError
from webkit.app import Frontend, FrontendDep
from webkit.forms import FormErrors, from_api

router = APIRouter(prefix="/catalogue", dependencies=[Depends(require_staff)])

STATUSES = ("published", "draft", "suspended", "retired")
STATUS_COLOURS = {"published": "green", "draft": "grey", "suspended": "yellow", "retired": "red"}
#: The form's fields: (input name, label, kind). Lists are comma-separated in the form.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Name", "text"),
    ("description", "Description", "textarea"),
    ("keywords", "Keywords (separate with commas)", "list"),
    ("groups", "Groups (separate with commas)", "list"),
    ("department", "Department", "text"),
    ("eligibility", "Who it is for", "textarea"),
    ("fees", "Fees", "textarea"),
    ("opening_hours", "Opening hours", "textarea"),
)
LIST_FIELDS = {name for name, _, kind in FIELDS if kind == "list"}
API_FIELDS = {name: name for name, _, _ in FIELDS}


def _as_text(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _form_values(form: Any, prefix: str = "") -> dict[str, str]:
    return {name: str(form.get(prefix + name, "")).strip() for name, _, _ in FIELDS}


def _to_api(name: str, text: str) -> Any:
    if name in LIST_FIELDS:
        return [part.strip() for part in text.split(",") if part.strip()]
    if name in ("name", "description"):
        return text
    return text or None


@router.get("")
async def search(
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    q: str = "",
    status: str = "published",
) -> Response:
    status = status if status in STATUSES else "published"
    found = await frontend.client(CatalogueApi, user).search(q=q.strip()[:200], status=status)
    return frontend.render(
        request,
        "catalogue/list.html",
        page_title="Catalogue",
        items=found["items"],
        total=found["total"],
        q=q,
        status=status,
        status_items=[{"value": s, "text": s.capitalize()} for s in STATUSES],
        colours=STATUS_COLOURS,
    )


@router.get("/new")
async def new(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    return frontend.render(
        request, "catalogue/new.html", page_title="Add a service", fields=FIELDS, values={}
    )


@router.post("/new")
async def create(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    form = await request.form()
    values = _form_values(form)
    errors = FormErrors()
    if not values["name"]:
        errors.add("name", "Enter the service's name")
    body = {name: _to_api(name, text) for name, text in values.items() if text}
    if not errors:
        try:
            created = await frontend.client(CatalogueApi, user).create(body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            errors = from_api(exc.errors, API_FIELDS, fallback="name") or FormErrors(
                {"name": exc.detail or exc.title}
            )
        else:
            return RedirectResponse(f"/catalogue/{created['id']}?saved=created", status_code=303)
    return frontend.render(
        request,
        "catalogue/new.html",
        status_code=400,
        page_title="Add a service",
        fields=FIELDS,
        values=values,
        errors=errors,
    )


@router.get("/{service_id}")
async def one(
    service_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    saved: str = "",
) -> Response:
    entry, _ = await frontend.client(CatalogueApi, user).one(str(service_id))
    return frontend.render(
        request,
        "catalogue/one.html",
        page_title=entry["name"],
        entry=entry,
        rows=[{"key": label, "value": _as_text(entry, name)} for name, label, _ in FIELDS],
        colours=STATUS_COLOURS,
        saved=saved,
    )


def _edit_page(
    request: Request,
    frontend: Frontend,
    entry: dict[str, Any],
    etag: str,
    values: dict[str, str],
    *,
    conflicts: list[dict[str, str]] | None = None,
    changed: list[str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    return frontend.render(
        request,
        "catalogue/edit.html",
        status_code=status_code,
        page_title=f"Edit {entry['name']}",
        entry=entry,
        etag=etag,
        fields=FIELDS,
        values=values,
        opened={name: _as_text(entry, name) for name, _, _ in FIELDS},
        conflicts=conflicts or [],
        changed=changed or [],
        errors=errors,
    )


@router.get("/{service_id}/edit")
async def edit(
    service_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    entry, etag = await frontend.client(CatalogueApi, user).one(str(service_id))
    values = {name: _as_text(entry, name) for name, _, _ in FIELDS}
    return _edit_page(request, frontend, entry, etag, values)


@router.post("/{service_id}/edit")
async def save(
    service_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    values = _form_values(form)
    opened = _form_values(form, "opened-")
    etag = str(form.get("etag", ""))
    api = frontend.client(CatalogueApi, user)
    changes = {
        name: _to_api(name, text) for name, text in values.items() if text != opened.get(name)
    }
    if not changes:
        return RedirectResponse(f"/catalogue/{service_id}", status_code=303)
    try:
        await api.update(str(service_id), changes, etag)
    except ApiError as exc:
        if exc.status in (412, 428):
            return await _merge(request, frontend, api, str(service_id), values, opened)
        if exc.status not in (400, 409, 422):
            raise
        entry, current = await api.one(str(service_id))
        errors = from_api(exc.errors, API_FIELDS, fallback="name") or FormErrors(
            {"name": exc.detail or exc.title}
        )
        return _edit_page(request, frontend, entry, current, values, errors=errors, status_code=400)
    return RedirectResponse(f"/catalogue/{service_id}?saved=changed", status_code=303)


async def _merge(
    request: Request,
    frontend: Frontend,
    api: CatalogueApi,
    service_id: str,
    mine: dict[str, str],
    opened: dict[str, str],
) -> Response:
    """Someone saved the entry after this editor opened it: the form again on the newest
    version, their changes kept where this editor changed nothing, this editor's where only
    they changed it, and every field both changed listed with both values (the editor's kept
    in the form) so they choose."""
    entry, etag = await api.one(service_id)
    now = {name: _as_text(entry, name) for name, _, _ in FIELDS}
    merged: dict[str, str] = {}
    conflicts: list[dict[str, str]] = []
    labels = {name: label for name, label, _ in FIELDS}
    for name in now:
        theirs_changed = now[name] != opened.get(name, "")
        mine_changed = mine[name] != opened.get(name, "")
        if mine_changed and theirs_changed and mine[name] != now[name]:
            conflicts.append(
                {"name": name, "label": labels[name], "theirs": now[name], "mine": mine[name]}
            )
        merged[name] = mine[name] if mine_changed else now[name]
    changed_by_others = [labels[n] for n in now if now[n] != opened.get(n, "")]
    errors = FormErrors()
    for c in conflicts:
        errors.add(c["name"], f"{c['label']} was changed by someone else: check it")
    if not errors:
        errors.add("etag", "Someone else changed this service while you were editing it", None)
    return _edit_page(
        request,
        frontend,
        entry,
        etag,
        merged,
        conflicts=conflicts,
        changed=changed_by_others,
        errors=errors,
        status_code=409,
    )


@router.post("/{service_id}/publish")
async def publish(
    service_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    await frontend.client(CatalogueApi, user).publish(str(service_id))
    return RedirectResponse(f"/catalogue/{service_id}?saved=published", status_code=303)


@router.get("/{service_id}/history")
async def history(
    service_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    api = frontend.client(CatalogueApi, user)
    entry, _ = await api.one(str(service_id))
    rows = await api.history(str(service_id))
    labels = {name: label for name, label, _ in FIELDS}
    return frontend.render(
        request,
        "catalogue/history.html",
        page_title=f"History of {entry['name']}",
        entry=entry,
        rows=list(reversed(rows)),
        labels=labels,
    )


ACTIONS = {"suspend": "Suspend", "retire": "Retire"}


@router.get("/{service_id}/{action}")
async def status_form(
    service_id: uuid.UUID,
    action: Literal["suspend", "retire"],
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
) -> Response:
    entry, _ = await frontend.client(CatalogueApi, user).one(str(service_id))
    return frontend.render(
        request,
        "catalogue/status.html",
        page_title=f"{ACTIONS[action]} {entry['name']}",
        entry=entry,
        action=action,
        verb=ACTIONS[action],
        reason="",
    )


@router.post("/{service_id}/{action}")
async def change_status(
    service_id: uuid.UUID,
    action: Literal["suspend", "retire"],
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
) -> Response:
    form = await request.form()
    reason = str(form.get("reason", "")).strip()
    api = frontend.client(CatalogueApi, user)
    errors = FormErrors()
    if not reason:
        errors.add("reason", f"Enter why you want to {action} this service")
    else:
        try:
            if action == "suspend":
                await api.suspend(str(service_id), reason)
            else:
                await api.retire(str(service_id), reason)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            errors.add("reason", exc.detail or exc.title)
        else:
            past = "suspended" if action == "suspend" else "retired"
            return RedirectResponse(f"/catalogue/{service_id}?saved={past}", status_code=303)
    entry, _ = await api.one(str(service_id))
    return frontend.render(
        request,
        "catalogue/status.html",
        status_code=400,
        page_title=f"{ACTIONS[action]} {entry['name']}",
        entry=entry,
        action=action,
        verb=ACTIONS[action],
        reason=reason,
        errors=errors,
    )
