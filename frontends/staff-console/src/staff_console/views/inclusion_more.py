"""Digital inclusion, continued: venues (list, add, change), data-SIM vouchers (stock, add
codes, allocate one to a participant) and Essential Digital Skills outcomes (record an
assessment, a programme's figures).

A venue's change sends only the fields this editor changed, with the ETag they opened it at;
when someone saved it in between (412), the form comes back on the newest version with their
changes kept where this editor changed nothing, and every field both changed listed with both
values (as the catalogue's edit)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.auth import StaffUser, require_staff
from staff_console.clients import OutcomesApi, ProgrammesApi, VenuesApi, VouchersApi
from webkit.api import ApiError
from webkit.app import Frontend, FrontendDep
from webkit.forms import FormErrors, from_api

router = APIRouter(prefix="/inclusion", dependencies=[Depends(require_staff)])

#: The inclusion API's wards (``inclusion.domain.geo.Ward``); the API checks them again.
WARDS = (
    "Bletchley East",
    "Bletchley Park",
    "Bletchley West",
    "Bradwell",
    "Broughton",
    "Campbell Park and Old Woughton",
    "Central Milton Keynes",
    "Danesborough and Walton",
    "Loughton and Shenley",
    "Monkston",
    "Newport Pagnell North and Hanslope",
    "Newport Pagnell South",
    "Olney",
    "Shenley Brook End",
    "Stantonbury",
    "Stony Stratford",
    "Tattenhoe",
    "Wolverton",
    "Woughton and Fishermead",
)
#: Essential Digital Skills areas, in the framework's order, with their labels.
SKILLS = (
    ("foundation", "Foundation skills"),
    ("communicating", "Communicating"),
    ("handling_information", "Handling information and content"),
    ("transacting", "Transacting"),
    ("problem_solving", "Problem solving"),
    ("being_safe_and_legal", "Being safe and legal online"),
)
CONFIDENCE = (
    {"value": "", "text": "Choose"},
    {"value": "1", "text": "1: I can't do this yet"},
    {"value": "2", "text": "2: I need help"},
    {"value": "3", "text": "3: I can do this"},
    {"value": "4", "text": "4: I can do this confidently"},
)
ERRORS = (400, 409, 422)
_CODE = re.compile(r"^[A-Za-z0-9\-]{4,100}$")
_POSTCODE = re.compile(r"^[A-Za-z]{1,2}\d[A-Za-z\d]?\s*\d[A-Za-z]{2}$")


def _values(form: Any) -> dict[str, str]:
    return {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


# -- venues ------------------------------------------------------------------------------------
@router.get("/venues")
async def venues(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    found = await frontend.client(VenuesApi, user).all()
    return frontend.render(
        request,
        "inclusion/venues.html",
        page_title="Venues",
        venues=sorted(found, key=lambda v: (v["ward"], v["name"])),
        saved=request.query_params.get("saved", ""),
    )


def _venue_page(
    request: Request, frontend: Frontend, values: dict[str, str], errors: FormErrors | None = None
) -> Response:
    return frontend.render(
        request,
        "inclusion/venue_new.html",
        status_code=400 if errors else 200,
        page_title="Add a venue",
        ward_items=[{"value": "", "text": "Choose a ward"}]
        + [{"value": w, "text": w} for w in WARDS],
        values=values,
        errors=errors,
    )


@router.get("/venues/new")
async def venue_form(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    return _venue_page(request, frontend, {})


@router.post("/venues/new")
async def add_venue(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    values = _values(await request.form())
    errors = FormErrors()
    if not values.get("name"):
        errors.add("name", "Enter the venue's name")
    if not values.get("address"):
        errors.add("address", "Enter the venue's address")
    if not _POSTCODE.match(values.get("postcode", "")):
        errors.add("postcode", "Enter a postcode, like MK9 3EJ")
    if values.get("ward") not in WARDS:
        errors.add("ward", "Choose the venue's ward")
    place: dict[str, float] = {}
    for name, low, high, word in (
        ("latitude", 51.9, 52.25, "latitude"),
        ("longitude", -1.0, -0.4, "longitude"),
    ):
        try:
            number = float(values.get(name, ""))
        except ValueError:
            number = float("nan")
        if not low <= number <= high:
            errors.add(name, f"Enter the {word} in Milton Keynes, from {low} to {high}")
        else:
            place[name] = number
    if errors:
        return _venue_page(request, frontend, values, errors)
    body = {
        "name": values["name"],
        "address": values["address"],
        "postcode": values["postcode"].upper(),
        "ward": values["ward"],
        **place,
        "accessibility_notes": values.get("accessibility_notes", ""),
    }
    try:
        await frontend.client(VenuesApi, user).create(body)
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        fields = {k: k for k in ("name", "address", "postcode", "ward", "accessibility_notes")}
        problem = from_api(exc.errors, fields, fallback="name")
        if not problem:
            problem.add("name", exc.detail or exc.title)
        return _venue_page(request, frontend, values, problem)
    return RedirectResponse("/inclusion/venues?saved=venue", status_code=303)


#: The venue's fields as the edit form shows them: (name, label).
VENUE_FIELDS = (
    ("name", "Name"),
    ("address", "Address"),
    ("postcode", "Postcode"),
    ("ward", "Ward"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
    ("accessibility_notes", "Accessibility"),
    ("opening_times", "Opening times"),
)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: ``Monday 09:00-17:00`` (also ``9.00``, an en dash, or ``to`` between the times).
_OPENING = re.compile(
    r"^(?P<day>[a-z]+)\s+(?P<opens>\d{1,2}[:.]\d{2})\s*(?:-|\u2013|to)\s*"
    r"(?P<closes>\d{1,2}[:.]\d{2})$",
    re.IGNORECASE,
)


def _clock(text: str) -> str | None:
    hours, minutes = re.split(r"[:.]", text)
    if int(hours) > 23 or int(minutes) > 59:
        return None
    return f"{int(hours):02d}:{minutes}"


def _same(a: str, b: str) -> bool:
    """Equal but for spaces and line endings (a browser sends a textarea's lines as CRLF)."""
    return a.split() == b.split()


def _venue_text(venue: dict[str, Any]) -> dict[str, str]:
    """The venue as the form's text fields."""
    values = {name: str(venue.get(name) or "") for name, _ in VENUE_FIELDS}
    values["opening_times"] = "\n".join(
        f"{t['day'].capitalize()} {t['opens']}-{t['closes']}"
        for t in venue.get("opening_times") or []
    )
    return values


def _venue_changes(
    values: dict[str, str], opened: dict[str, str], errors: FormErrors
) -> dict[str, Any]:
    """What the editor changed, as the API takes it; each bad field named in ``errors``."""
    changes: dict[str, Any] = {}
    for name, _ in VENUE_FIELDS:
        text = values.get(name, "")
        if _same(text, opened.get(name, "")):
            continue
        if name in ("name", "address") and not text:
            errors.add(name, f"Enter the venue's {name}")
        elif name == "postcode" and not _POSTCODE.match(text):
            errors.add(name, "Enter a postcode, like MK6 2LP")
        elif name == "ward" and text not in WARDS:
            errors.add(name, "Choose the venue's ward")
        elif name in ("latitude", "longitude"):
            low, high = (51.9, 52.25) if name == "latitude" else (-1.0, -0.4)
            try:
                number = float(text)
            except ValueError:
                number = float("nan")
            if not low <= number <= high:
                errors.add(name, f"Enter the {name} in Milton Keynes, from {low} to {high}")
            else:
                changes[name] = number
            continue
        elif name == "opening_times":
            times, bad = [], []
            for line in filter(None, (ln.strip() for ln in text.splitlines())):
                match = _OPENING.match(line)
                day = match["day"].lower() if match else ""
                opens = _clock(match["opens"]) if match else None
                closes = _clock(match["closes"]) if match else None
                if day not in DAYS or not opens or not closes or opens >= closes:
                    bad.append(line)
                else:
                    times.append({"day": day, "opens": opens, "closes": closes})
            if bad:
                errors.add(
                    name,
                    "Write each opening time as a day and two times, like Monday 09:00-17:00 "
                    "(not: " + "; ".join(bad)[:200] + ")",
                )
            else:
                changes[name] = times
            continue
        if name == "postcode":
            text = text.upper()
        changes[name] = text
    return changes


def _venue_edit_page(
    request: Request,
    frontend: Frontend,
    venue: dict[str, Any],
    etag: str,
    values: dict[str, str],
    *,
    errors: FormErrors | None = None,
    conflicts: list[dict[str, str]] | None = None,
    changed: list[str] | None = None,
    opened: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The edit form; ``opened``: the venue as the editor opened it (what a save compares
    with), by default as it is now."""
    return frontend.render(
        request,
        "inclusion/venue_edit.html",
        status_code=status_code,
        page_title=f"Change {venue['name']}",
        venue=venue,
        etag=etag,
        values=values,
        opened=opened or _venue_text(venue),
        ward_items=[{"value": w, "text": w} for w in WARDS],
        errors=errors,
        conflicts=conflicts or [],
        changed=changed or [],
    )


@router.get("/venues/{venue_id}/edit")
async def venue_edit(
    venue_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    venue, etag = await frontend.client(VenuesApi, user).one(str(venue_id))
    return _venue_edit_page(request, frontend, venue, etag, _venue_text(venue))


@router.post("/venues/{venue_id}/edit")
async def venue_save(
    venue_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    values = {name: str(form.get(name, "")).strip() for name, _ in VENUE_FIELDS}
    opened = {name: str(form.get("opened-" + name, "")) for name, _ in VENUE_FIELDS}
    etag = str(form.get("etag", ""))
    api = frontend.client(VenuesApi, user)
    errors = FormErrors()
    changes = _venue_changes(values, opened, errors)
    if errors:
        venue, _ = await api.one(str(venue_id))
        return _venue_edit_page(
            request, frontend, venue, etag, values, errors=errors, opened=opened, status_code=400
        )
    if not changes:
        return RedirectResponse("/inclusion/venues", status_code=303)
    try:
        await api.update(str(venue_id), changes, etag)
    except ApiError as exc:
        if exc.status in (412, 428):
            return await _venue_merge(request, frontend, api, str(venue_id), values, opened)
        if exc.status not in ERRORS:
            raise
        venue, current = await api.one(str(venue_id))
        fields = {name: name for name, _ in VENUE_FIELDS}
        problem = from_api(exc.errors, fields, fallback="name") or FormErrors(
            {"name": exc.detail or exc.title}
        )
        return _venue_edit_page(
            request, frontend, venue, current, values, errors=problem, status_code=400
        )
    return RedirectResponse("/inclusion/venues?saved=changed", status_code=303)


async def _venue_merge(
    request: Request,
    frontend: Frontend,
    api: VenuesApi,
    venue_id: str,
    mine: dict[str, str],
    opened: dict[str, str],
) -> Response:
    venue, etag = await api.one(venue_id)
    now = _venue_text(venue)
    labels = dict(VENUE_FIELDS)
    merged: dict[str, str] = {}
    conflicts: list[dict[str, str]] = []
    for name in now:
        theirs_changed = not _same(now[name], opened.get(name, ""))
        mine_changed = not _same(mine[name], opened.get(name, ""))
        if mine_changed and theirs_changed and not _same(mine[name], now[name]):
            conflicts.append(
                {"name": name, "label": labels[name], "theirs": now[name], "mine": mine[name]}
            )
        merged[name] = mine[name] if mine_changed else now[name]
    errors = FormErrors()
    for c in conflicts:
        errors.add(c["name"], f"{c['label']} was changed by someone else: check it")
    if not errors:
        errors.add("etag", "Someone else changed this venue while you were editing it", None)
    return _venue_edit_page(
        request,
        frontend,
        venue,
        etag,
        merged,
        errors=errors,
        conflicts=conflicts,
        changed=[labels[n] for n in now if not _same(now[n], opened.get(n, ""))],
        status_code=409,
    )


# -- vouchers ----------------------------------------------------------------------------------
async def _vouchers_page(
    request: Request,
    frontend: Frontend,
    user: StaffUser,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    saved: str = "",
) -> Response:
    stock = await frontend.client(VouchersApi, user).stock()
    programmes = await frontend.client(ProgrammesApi, user).all()
    choices = [{"value": "", "text": "Choose a programme"}] + [
        {"value": p["id"], "text": p["title"]}
        for p in programmes
        if p["kind"] == "connectivity" and p["status"] in ("draft", "published")
    ]
    return frontend.render(
        request,
        "inclusion/vouchers.html",
        status_code=400 if errors else 200,
        page_title="Data-SIM vouchers",
        stock=stock,
        programme_items=choices,
        values=values or {},
        errors=errors,
        saved=saved,
    )


@router.get("/vouchers")
async def vouchers(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    return await _vouchers_page(
        request,
        frontend,
        user,
        values={"participant_id": request.query_params.get("participant", "")},
        saved=request.query_params.get("saved", ""),
    )


@router.post("/vouchers/codes")
async def add_codes(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    values = _values(await request.form())
    codes = [c for c in re.split(r"[\s,;]+", values.get("codes", "")) if c]
    errors = FormErrors()
    if not values.get("stock_programme_id"):
        errors.add("stock_programme_id", "Choose the programme the vouchers are for")
    if not values.get("provider"):
        errors.add("provider", "Enter the provider, for example National Databank (Vodafone)")
    bad = [c for c in codes if not _CODE.match(c)]
    if not codes:
        errors.add("codes", "Enter the voucher codes, one a line")
    elif bad:
        errors.add("codes", f"These codes are not valid (4 to 100 letters, digits or -): {bad[0]}")
    elif len(codes) > 1000:
        errors.add("codes", "Enter at most 1000 codes at a time")
    if errors:
        return await _vouchers_page(request, frontend, user, values=values, errors=errors)
    body = {
        "programme_id": values["stock_programme_id"],
        "provider": values["provider"],
        "codes": codes,
    }
    try:
        await frontend.client(VouchersApi, user).add(body)
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        problem = FormErrors()
        problem.add("stock_programme_id", exc.detail or exc.title)
        return await _vouchers_page(request, frontend, user, values=values, errors=problem)
    return RedirectResponse(f"/inclusion/vouchers?saved={len(codes)}", status_code=303)


@router.post("/vouchers/allocations")
async def allocate(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    values = _values(await request.form())
    errors = FormErrors()
    if not values.get("programme_id"):
        errors.add("programme_id", "Choose the programme")
    participant = _uuid(values.get("participant_id", ""))
    if participant is None:
        errors.add("participant_id", "Enter the participant's reference, from a session's page")
    if errors or participant is None:
        return await _vouchers_page(request, frontend, user, values=values, errors=errors)
    try:
        await frontend.client(VouchersApi, user).allocate(values["programme_id"], participant)
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        problem = FormErrors()
        problem.add("programme_id", exc.detail or exc.title)
        return await _vouchers_page(request, frontend, user, values=values, errors=problem)
    return RedirectResponse("/inclusion/vouchers?saved=allocated", status_code=303)


# -- Essential Digital Skills outcomes ---------------------------------------------------------
async def _outcomes_page(
    request: Request,
    frontend: Frontend,
    user: StaffUser,
    programme_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    saved: str = "",
) -> Response:
    programme = await frontend.client(ProgrammesApi, user).one(programme_id)
    figures = await frontend.client(OutcomesApi, user).figures(programme_id)
    labels = dict(SKILLS)
    return frontend.render(
        request,
        "inclusion/outcomes.html",
        status_code=400 if errors else 200,
        page_title=f"{programme['title']}: Essential Digital Skills",
        programme=programme,
        figures=figures,
        labels=labels,
        skills=SKILLS,
        confidence=CONFIDENCE,
        values=values or {},
        errors=errors,
        saved=saved,
    )


@router.get("/programmes/{programme_id}/outcomes")
async def outcomes(
    programme_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    return await _outcomes_page(
        request,
        frontend,
        user,
        str(programme_id),
        values={"participant_id": request.query_params.get("participant", "")},
        saved=request.query_params.get("saved", ""),
    )


@router.post("/programmes/{programme_id}/outcomes")
async def record_outcome(
    programme_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    values = _values(await request.form())
    errors = FormErrors()
    participant = _uuid(values.get("participant_id", ""))
    if participant is None:
        errors.add("participant_id", "Enter the participant's reference, from a session's page")
    if values.get("stage") not in ("baseline", "follow-up"):
        errors.add("stage", "Choose baseline or follow-up")
    scores: dict[str, int] = {}
    for key, label in SKILLS:
        if values.get(key) not in ("1", "2", "3", "4"):
            errors.add(key, f"Choose the confidence for {label.lower()}")
        else:
            scores[key] = int(values[key])
    if errors:
        return await _outcomes_page(
            request, frontend, user, str(programme_id), values=values, errors=errors
        )
    try:
        await frontend.client(OutcomesApi, user).record(
            str(programme_id),
            {"stage": values["stage"], "scores": scores, "participant_id": participant},
        )
    except ApiError as exc:
        if exc.status not in ERRORS:
            raise
        problem = FormErrors()
        problem.add("participant_id", exc.detail or exc.title)
        return await _outcomes_page(
            request, frontend, user, str(programme_id), values=values, errors=problem
        )
    return RedirectResponse(
        f"/inclusion/programmes/{programme_id}/outcomes?saved={values['stage']}", 303
    )
