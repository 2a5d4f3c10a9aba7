"""Digital inclusion, continued: venues (list, add), data-SIM vouchers (stock, add codes,
allocate one to a participant) and Essential Digital Skills outcomes (record an assessment,
a programme's figures). Venues cannot be edited: the inclusion API has no venue update."""

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
