"""Digital inclusion: programmes, sessions (schedule, capacity, cancel), enrolments with the
waiting list and attendance, devices and loans (lend, return, overdue), and the figures by
programme, ward and month as charts with their tables and as CSV."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.auth import StaffUser, require_staff
from staff_console.charts import bar_chart
from staff_console.clients import (
    DevicesApi,
    EnrolmentsApi,
    ProgrammesApi,
    ReportsApi,
    SessionsApi,
    VenuesApi,
)
from webkit.api import ApiError
from webkit.app import Frontend, FrontendDep
from webkit.forms import FormErrors

router = APIRouter(prefix="/inclusion", dependencies=[Depends(require_staff)])

LONDON = ZoneInfo("Europe/London")
CONDITIONS = ("new", "good", "fair", "poor", "broken")
_TIME = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*$")
ERRORS = (400, 409, 422)
#: Sessions that have started, newest first, on a programme's page (to mark attendance).
STARTED_SHOWN = 10


def _when(value: str | None) -> str:
    """``2026-12-01T10:00:00Z`` → ``Tue 1 Dec 2026, 10:00`` (London time)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(LONDON)
    except ValueError:
        return value
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M}"


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _problem(exc: ApiError, field: str) -> FormErrors:
    errors = FormErrors()
    for name, message in exc.errors.items():
        errors.add(field, f"{name.replace('_', ' ')}: {message}")
    if not errors:
        errors.add(field, exc.detail or exc.title)
    return errors


@router.get("")
async def programmes(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    found = await frontend.client(ProgrammesApi, user).all()
    return frontend.render(
        request, "inclusion/programmes.html", page_title="Digital inclusion", programmes=found
    )


@router.get("/programmes/{programme_id}")
async def programme(
    programme_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    found = await frontend.client(ProgrammesApi, user).one(str(programme_id))
    sessions = await frontend.client(SessionsApi, user).find(
        programme_id=str(programme_id), upcoming=False
    )
    # a session that has started leaves the upcoming list but is still where attendance is
    # marked: the most recent ones are listed under it
    now = datetime.now(LONDON)
    started = [s for s in sessions if _moment(s["starts_at"]) <= now]
    return frontend.render(
        request,
        "inclusion/programme.html",
        page_title=found["title"],
        programme=found,
        sessions=[s for s in sessions if _moment(s["starts_at"]) > now],
        started=started[::-1][:STARTED_SHOWN],
        when=_when,
    )


@router.post("/programmes/{programme_id}/status")
async def programme_status(
    programme_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    status = str(form.get("status", ""))
    if status in ("published", "closed", "archived"):
        await frontend.client(ProgrammesApi, user).set_status(str(programme_id), status)
    return RedirectResponse(f"/inclusion/programmes/{programme_id}", status_code=303)


# -- sessions ---------------------------------------------------------------------------------
async def _schedule_page(
    request: Request,
    frontend: Frontend,
    user: StaffUser,
    values: dict[str, Any],
    errors: FormErrors | None = None,
) -> Response:
    programmes = await frontend.client(ProgrammesApi, user).all()
    venues = await frontend.client(VenuesApi, user).all()
    return frontend.render(
        request,
        "inclusion/schedule.html",
        status_code=400 if errors else 200,
        page_title="Schedule a session",
        programme_items=[{"value": "", "text": "Choose a programme"}]
        + [
            {"value": p["id"], "text": p["title"]}
            for p in programmes
            if p["status"] in ("draft", "published")
        ],
        venue_items=[{"value": "", "text": "Choose a venue"}]
        + [{"value": v["id"], "text": f"{v['name']} ({v['ward']})"} for v in venues],
        values=values,
        errors=errors,
    )


@router.get("/sessions/new")
async def schedule_form(
    request: Request, frontend: FrontendDep, user: StaffUser, programme_id: str = ""
) -> Response:
    return await _schedule_page(request, frontend, user, {"programme_id": programme_id})


def _parse_time(text: str) -> time | None:
    match = _TIME.match(text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        return None
    return time(int(match.group(1)), int(match.group(2)))


@router.post("/sessions/new")
async def schedule(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    form = await request.form()
    values: dict[str, Any] = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    values["date"] = {p: values.get(f"date-{p}", "") for p in ("day", "month", "year")}
    errors = FormErrors()
    if not values.get("programme_id"):
        errors.add("programme_id", "Choose a programme")
    if not values.get("venue_id"):
        errors.add("venue_id", "Choose a venue")
    day: date | None = None
    try:
        d = values["date"]
        day = date(int(d["year"]), int(d["month"]), int(d["day"]))
    except ValueError:
        errors.add("date", "Enter the session's date, for example 27 3 2027")
    starts, ends = _parse_time(values.get("starts", "")), _parse_time(values.get("ends", ""))
    if starts is None:
        errors.add("starts", "Enter the start time, for example 10:00")
    if ends is None:
        errors.add("ends", "Enter the end time, for example 12:00")
    elif starts is not None and ends <= starts:
        errors.add("ends", "The end time must be after the start time")
    capacity = values.get("capacity", "")
    if not capacity.isdigit() or not 1 <= int(capacity) <= 1000:
        errors.add("capacity", "Enter the number of places, from 1 to 1000")
    if errors or day is None or starts is None or ends is None:
        return await _schedule_page(request, frontend, user, values, errors)
    body = {
        "programme_id": values["programme_id"],
        "venue_id": values["venue_id"],
        "starts_at": datetime.combine(day, starts, LONDON).isoformat(),
        "ends_at": datetime.combine(day, ends, LONDON).isoformat(),
        "capacity": int(capacity),
    }
    try:
        created = await frontend.client(SessionsApi, user).schedule(body)
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        return await _schedule_page(request, frontend, user, values, _problem(exc, "date"))
    return RedirectResponse(f"/inclusion/sessions/{created['id']}?saved=scheduled", 303)


async def _session_page(
    request: Request,
    frontend: Frontend,
    user: StaffUser,
    session_id: str,
    *,
    saved: str = "",
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    api = frontend.client(SessionsApi, user)
    found = await api.one(session_id)
    enrolments = await api.enrolments(session_id)
    return frontend.render(
        request,
        "inclusion/session.html",
        status_code=400 if errors else 200,
        page_title=f"{found['programme_title']}: {_when(found['starts_at'])}",
        session=found,
        confirmed=[e for e in enrolments if e["status"] == "confirmed"],
        waitlisted=sorted(
            (e for e in enrolments if e["status"] == "waitlisted"),
            key=lambda e: e.get("waitlist_position") or 0,
        ),
        when=_when,
        saved=saved,
        errors=errors,
        values=values or {"capacity": str(found["capacity"])},
    )


@router.get("/sessions/{session_id}")
async def session(
    session_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    saved: str = "",
) -> Response:
    return await _session_page(request, frontend, user, str(session_id), saved=saved)


@router.post("/sessions/{session_id}/capacity")
async def capacity(
    session_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    text = str(form.get("capacity", "")).strip()
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        errors = FormErrors()
        errors.add("capacity", "Enter the number of places, from 1 to 1000")
        return await _session_page(
            request, frontend, user, str(session_id), errors=errors, values={"capacity": text}
        )
    try:
        await frontend.client(SessionsApi, user).set_capacity(str(session_id), int(text))
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        return await _session_page(
            request,
            frontend,
            user,
            str(session_id),
            errors=_problem(exc, "capacity"),
            values={"capacity": text},
        )
    return RedirectResponse(f"/inclusion/sessions/{session_id}?saved=changed", 303)


@router.get("/sessions/{session_id}/cancel")
async def cancel_form(
    session_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    found = await frontend.client(SessionsApi, user).one(str(session_id))
    return frontend.render(
        request,
        "inclusion/cancel.html",
        page_title="Cancel the session",
        session=found,
        when=_when,
        reason="",
    )


@router.post("/sessions/{session_id}/cancel")
async def cancel(
    session_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    reason = str(form.get("reason", "")).strip()
    api = frontend.client(SessionsApi, user)
    errors = FormErrors()
    if not reason:
        errors.add("reason", "Enter why the session is cancelled: the participants are told")
    elif len(reason) > 300 or "\n" in reason:
        errors.add("reason", "Write the reason as one sentence of 300 characters or fewer")
    else:
        try:
            await api.cancel(str(session_id), reason)
        except ApiError as exc:
            if exc.status not in ERRORS:
                raise
            errors = _problem(exc, "reason")
        else:
            return RedirectResponse(f"/inclusion/sessions/{session_id}?saved=cancelled", 303)
    found = await api.one(str(session_id))
    return frontend.render(
        request,
        "inclusion/cancel.html",
        status_code=400,
        page_title="Cancel the session",
        session=found,
        when=_when,
        reason=reason,
        errors=errors,
    )


@router.post("/enrolments/{enrolment_id}/attendance")
async def attendance(
    enrolment_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    attended = str(form.get("attended", ""))
    session_id = str(form.get("session_id", ""))
    try:
        uuid.UUID(session_id)
    except ValueError:
        return frontend.error_page(request, 400, "Sorry, there is a problem with this form")
    if attended not in ("yes", "no"):
        return RedirectResponse(f"/inclusion/sessions/{session_id}", 303)
    try:
        await frontend.client(EnrolmentsApi, user).attendance(str(enrolment_id), attended == "yes")
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        return await _session_page(
            request, frontend, user, session_id, errors=_problem(exc, "attendance")
        )
    return RedirectResponse(f"/inclusion/sessions/{session_id}?saved=attendance", 303)


# -- devices and loans ------------------------------------------------------------------------
@router.get("/devices")
async def devices(
    request: Request, frontend: FrontendDep, user: StaffUser, participant: str = ""
) -> Response:
    try:
        participant = str(uuid.UUID(participant)) if participant else ""
    except ValueError:
        participant = ""
    found = await frontend.client(DevicesApi, user).all()
    return frontend.render(
        request,
        "inclusion/devices.html",
        page_title="Devices",
        devices=found,
        overdue=[d for d in found if d.get("current_loan") and d["current_loan"]["overdue"]],
        when=_when,
        request_participant=participant,
    )


async def _device_page(
    request: Request,
    frontend: Frontend,
    user: StaffUser,
    device_id: str,
    *,
    saved: str = "",
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    found = await frontend.client(DevicesApi, user).one(device_id)
    due = date.today() + timedelta(weeks=12)
    return frontend.render(
        request,
        "inclusion/device.html",
        status_code=400 if errors else 200,
        page_title=f"{found['make']} {found['model']} ({found['serial']})",
        device=found,
        when=_when,
        saved=saved,
        errors=errors,
        values=values
        or {"due": {"day": str(due.day), "month": str(due.month), "year": str(due.year)}},
        conditions=[{"value": c, "text": c.capitalize()} for c in CONDITIONS],
    )


def _participant(value: object) -> str:
    """A participant reference carried from a session's "lend a device" link, or ""."""
    try:
        return str(uuid.UUID(str(value))) if value else ""
    except ValueError:
        return ""


def _for_participant(participant: str) -> str:
    return f"&participant={participant}" if participant else ""


@router.get("/devices/new")
async def device_form(
    request: Request, frontend: FrontendDep, user: StaffUser, participant: str = ""
) -> Response:
    return frontend.render(
        request,
        "inclusion/device_new.html",
        page_title="Add a device",
        values={"participant": _participant(participant)},
        conditions=[{"value": c, "text": c.capitalize()} for c in CONDITIONS],
    )


@router.post("/devices/new")
async def add_device(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("make", "model", "serial", "condition")}
    values["participant"] = _participant(form.get("participant"))
    errors = FormErrors()
    for name, label in (("make", "make"), ("model", "model"), ("serial", "serial number")):
        if not values[name]:
            errors.add(name, f"Enter the device's {label}")
    if values["condition"] not in CONDITIONS:
        errors.add("condition", "Choose the device's condition")
    if not errors:
        try:
            body = {k: values[k] for k in ("make", "model", "serial", "condition")}
            created = await frontend.client(DevicesApi, user).add(body)
        except ApiError as exc:
            if exc.status not in ERRORS:
                raise
            errors = _problem(exc, "serial")
        else:
            then = _for_participant(values["participant"])
            return RedirectResponse(f"/inclusion/devices/{created['id']}?saved=added{then}", 303)
    return frontend.render(
        request,
        "inclusion/device_new.html",
        status_code=400,
        page_title="Add a device",
        values=values,
        errors=errors,
        conditions=[{"value": c, "text": c.capitalize()} for c in CONDITIONS],
    )


@router.get("/devices/{device_id}")
async def device(
    device_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
    saved: str = "",
    participant: str = "",
) -> Response:
    due = date.today() + timedelta(weeks=12)
    values = {
        "participant_id": _participant(participant),
        "due": {"day": str(due.day), "month": str(due.month), "year": str(due.year)},
    }
    return await _device_page(request, frontend, user, str(device_id), saved=saved, values=values)


@router.post("/devices/{device_id}/{action}")
async def device_action(
    device_id: uuid.UUID,
    action: Literal["wipe", "lend", "return"],
    request: Request,
    frontend: FrontendDep,
    user: StaffUser,
) -> Response:
    form = await request.form()
    api = frontend.client(DevicesApi, user)
    values: dict[str, Any] = {
        "participant_id": str(form.get("participant_id", "")).strip(),
        "due": {p: str(form.get(f"due-{p}", "")).strip() for p in ("day", "month", "year")},
        "condition": str(form.get("condition", "")),
    }
    errors = FormErrors()
    try:
        if action == "wipe":
            await api.wipe(str(device_id))
        elif action == "lend":
            try:
                participant = str(uuid.UUID(values["participant_id"]))
            except ValueError:
                errors.add(
                    "participant_id", "Enter the participant's reference from their enrolment"
                )
            try:
                d = values["due"]
                due = date(int(d["year"]), int(d["month"]), int(d["day"]))
            except ValueError:
                errors.add("due", "Enter the date it is due back, for example 27 3 2027")
            if not errors:
                due_at = datetime.combine(due, time(17, 0), LONDON).isoformat()
                await api.lend(str(device_id), participant, due_at)
        else:
            if values["condition"] not in CONDITIONS:
                errors.add("condition", "Choose the condition it came back in")
            else:
                await api.give_back(str(device_id), values["condition"])
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        errors = _problem(
            exc, {"lend": "participant_id", "return": "condition"}.get(action, "wipe")
        )
    if errors:
        return await _device_page(
            request, frontend, user, str(device_id), errors=errors, values=values
        )
    done = {"wipe": "wiped", "lend": "lent", "return": "returned"}[action]
    # wiped for a participant's loan: the lend form keeps their reference
    then = _for_participant(_participant(values["participant_id"])) if action == "wipe" else ""
    return RedirectResponse(f"/inclusion/devices/{device_id}?saved={done}{then}", 303)


# -- reports ----------------------------------------------------------------------------------
def _totals(rows: list[dict[str, Any]], key: str) -> list[tuple[str, dict[str, int]]]:
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        label = row[key] or "(no ward: devices and vouchers)"
        cell = out.setdefault(label, {"enrolments": 0, "completions": 0})
        for measure in cell:
            cell[measure] += int(row.get(measure) or 0)
    return sorted(out.items())


@router.get("/reports")
async def reports(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    rows = await frontend.client(ReportsApi, user).figures()
    views = []
    for key, title in (
        ("programme_title", "By programme"),
        ("ward", "By ward"),
        ("month", "By month"),
    ):
        totals = _totals(rows, key)
        views.append(
            {
                "id": key.split("_")[0],
                "title": title,
                "totals": totals,
                "chart": bar_chart(
                    [(label, cell["enrolments"]) for label, cell in totals],
                    title=f"Confirmed enrolments {title.lower()}",
                ),
            }
        )
    return frontend.render(
        request, "inclusion/reports.html", page_title="Inclusion figures", views=views
    )


@router.get("/reports.csv")
async def reports_csv(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    text = await frontend.client(ReportsApi, user).figures_csv()
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="inclusion-figures.csv"',
            "cache-control": "no-store",
        },
    )
