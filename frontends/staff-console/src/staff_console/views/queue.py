"""The request queue: filter by status, service, area (postcode district) and assignee;
assign to me; change the status (FixMyStreet's statuses); notes kept apart: public (the
reporter and Open311 see them) or internal (staff only)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.auth import StaffUser, require_staff
from staff_console.clients import Open311Api, ServiceRequestsApi
from webkit.api import ApiError
from webkit.app import FrontendDep
from webkit.forms import FormErrors, from_api

router = APIRouter(prefix="/requests", dependencies=[Depends(require_staff)])

#: FixMyStreet's statuses (the API's), as staff call them, with their tag colours.
STATUSES: dict[str, tuple[str, str]] = {
    "open": ("Open", "blue"),
    "investigating": ("Investigating", "light-blue"),
    "action_scheduled": ("Action scheduled", "purple"),
    "in_progress": ("In progress", "purple"),
    "fixed": ("Fixed", "green"),
    "duplicate": ("Duplicate", "grey"),
    "not_councils_responsibility": ("Not the council's responsibility", "grey"),
    "no_further_action": ("No further action", "grey"),
    "internal_referral": ("Internal referral", "yellow"),
    "closed": ("Closed", "grey"),
}
ASSIGNEE_FILTERS = ("", "me", "unassigned")


def status_label(status: str) -> tuple[str, str]:
    return STATUSES.get(status, (status.replace("_", " ").capitalize(), "grey"))


def _items(options: dict[str, str], any_text: str) -> list[dict[str, str]]:
    return [{"value": "", "text": any_text}] + [{"value": k, "text": v} for k, v in options.items()]


@router.get("")
async def queue(
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    status: str = "",
    service_code: str = "",
    assignee: str = "",
    area: str = "",
) -> Response:
    status = status if status in STATUSES else ""
    assignee = assignee if assignee in ASSIGNEE_FILTERS else ""
    services = await frontend.client(Open311Api, user).services()
    codes = {s["service_code"]: s["service_name"] for s in services}
    service_code = service_code if service_code in codes else ""
    api = frontend.client(ServiceRequestsApi, user)
    areas = {a["code"]: f"{a['code']}: {a['name']}" for a in await api.areas()}
    area = area if area in areas else ""
    found = await api.queue(
        status=status,
        service_code=service_code,
        area=area,
        assigned_to={"me": user.subject, "unassigned": ""}.get(assignee, ""),
    )
    items = found["items"]
    if assignee == "unassigned":  # the API filters by an assignee, not by none
        items = [r for r in items if not r.get("assigned_to")]
    return frontend.render(
        request,
        "requests/queue.html",
        page_title="Request queue",
        items=items,
        total=found["total"] if assignee != "unassigned" else len(items),
        status=status,
        service_code=service_code,
        assignee=assignee,
        area=area,
        area_items=_items(areas, "Any area"),
        status_items=_items({k: v[0] for k, v in STATUSES.items()}, "Any status"),
        service_items=_items(codes, "Any service"),
        assignee_items=[
            {"value": "", "text": "Anyone or no one"},
            {"value": "me", "text": "Me"},
            {"value": "unassigned", "text": "No one"},
        ],
        service_names=codes,
        status_label=status_label,
        me=user.subject,
    )


def _page(
    request: Request,
    frontend: Any,
    found: dict[str, Any],
    me: str,
    *,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    saved: str = "",
    status_code: int = 200,
) -> Response:
    response: Response = frontend.render(
        request,
        "requests/one.html",
        status_code=status_code,
        page_title=f"Request {found['id'][:8].upper()}",
        item=found,
        status_label=status_label,
        status_items=[{"value": k, "text": v[0]} for k, v in STATUSES.items()],
        values=values or {"status": found["status"], "visibility": "internal"},
        errors=errors,
        saved=saved,
        me=me,
    )
    return response


@router.get("/{request_id}")
async def one(
    request_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    saved: str = "",
) -> Response:
    found = await frontend.client(ServiceRequestsApi, user).one(str(request_id))
    return _page(request, frontend, found, user.subject, saved=saved)


@router.post("/{request_id}/assign")
async def assign(
    request_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    to = user.subject if form.get("to") != "nobody" else ""
    await frontend.client(ServiceRequestsApi, user).update(str(request_id), {"assigned_to": to})
    done = "assigned" if to else "unassigned"
    return RedirectResponse(f"/requests/{request_id}?saved={done}", status_code=303)


@router.post("/{request_id}")
async def update(
    request_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    values = {
        "status": str(form.get("status", "")),
        "note": str(form.get("note", "")).strip(),
        "visibility": str(form.get("visibility", "internal")),
    }
    api = frontend.client(ServiceRequestsApi, user)
    found = await api.one(str(request_id))
    errors = FormErrors()
    if values["status"] not in STATUSES:
        errors.add("status", "Select a status")
    if values["visibility"] not in ("internal", "public"):
        errors.add("visibility", "Select who can see the note")
    change: dict[str, Any] = {}
    if values["status"] in STATUSES and values["status"] != found["status"]:
        change["status"] = values["status"]
    if values["note"]:
        change["note"] = values["note"]
        change["note_visibility"] = values["visibility"]
    if not errors and not change:
        errors.add("status", "Change the status or write a note")
    if not errors:
        try:
            await api.update(str(request_id), change)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            errors = from_api(
                exc.errors,
                {"status": "status", "note": "note", "note_visibility": "visibility"},
                fallback="status",
            ) or FormErrors({"status": exc.detail or exc.title})
        else:
            return RedirectResponse(f"/requests/{request_id}?saved=updated", status_code=303)
    return _page(
        request, frontend, found, user.subject, errors=errors, values=values, status_code=400
    )
