"""Get help getting online: help near me by postcode → programmes and upcoming sessions →
eligibility questions → enrol (booked, or a place on the waiting list) → my bookings →
cancel."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from citizen_portal.clients import EnrolmentsApi, HelpNearMeApi, ProgrammesApi, SessionsApi
from citizen_portal.views.labels import status_label
from webkit.api import ApiError
from webkit.app import CurrentUser, FrontendDep
from webkit.forms import FormErrors

router = APIRouter(prefix="/help")
_POSTCODE = re.compile(r"^MK[0-9]{1,2}(\s*[0-9][A-Z]{2})?$")
YES_NO = [{"value": "yes", "text": "Yes"}, {"value": "no", "text": "No"}]
#: The eligibility rules' inputs (API rule → the question it is about).
RULE_FIELDS = {
    "age": "year_of_birth",
    "min_age": "year_of_birth",
    "max_age": "year_of_birth",
    "lives_in_milton_keynes": "postcode",
    "receives_benefits": "receives_benefits",
    "no_device_at_home": "has_device_at_home",
    "no_connection_at_home": "has_connection_at_home",
}
KINDS = {
    "digital-skills-course": "Digital skills course",
    "device-lending": "Borrow a device",
    "connectivity": "Free mobile data",
    "drop-in-help": "Drop-in help",
}


@router.get("")
async def start(request: Request, frontend: FrontendDep, postcode: str | None = None) -> Response:
    errors = None
    near = None
    if postcode is not None:
        postcode = postcode.strip().upper()
        errors = FormErrors()
        if not postcode:
            errors.add("postcode", "Enter your postcode")
        elif not _POSTCODE.match(postcode):
            errors.add("postcode", "Enter a Milton Keynes postcode, like MK9 3EJ or MK9")
        else:
            try:
                near = await frontend.client(HelpNearMeApi).near(postcode)
            except ApiError as error:
                if error.status != 422:
                    raise
                errors.add("postcode", "Enter a postcode in the Milton Keynes area, like MK9 3EJ")
    return frontend.render(
        request,
        "help/start.html",
        page_title="Get help getting online" if not near else f"Help near {postcode}",
        errors=errors or None,
        postcode=postcode or "",
        near=near,
        kinds=KINDS,
    )


@router.get("/sessions/{session_id}")
async def session_page(session_id: uuid.UUID, request: Request, frontend: FrontendDep) -> Response:
    session = await frontend.client(SessionsApi).one(str(session_id))
    programme = await frontend.client(ProgrammesApi).one(session["programme_id"])
    return frontend.render(
        request,
        "help/session.html",
        page_title=session["programme_title"],
        session=session,
        programme=programme,
        kinds=KINDS,
    )


def _facts(form: Any, errors: FormErrors) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    name = str(form.get("preferred_name", "")).strip()
    if name:
        answers["preferred_name"] = name[:100]
    postcode = str(form.get("postcode", "")).strip().upper()
    if not postcode:
        errors.add("postcode", "Enter your postcode")
    elif not _POSTCODE.match(postcode):
        errors.add("postcode", "Enter a Milton Keynes postcode, like MK9 3EJ")
    answers["postcode"] = postcode
    year = str(form.get("year_of_birth", "")).strip()
    if not year:
        errors.add("year_of_birth", "Enter the year you were born")
    elif not year.isdigit() or not 1900 <= int(year) <= date.today().year:
        errors.add("year_of_birth", "Enter a real year of birth, like 1960")
    answers["year_of_birth"] = year
    for field, question in (
        ("receives_benefits", "if you get benefits"),
        ("has_device_at_home", "if you have a computer, tablet or smartphone at home"),
        ("has_connection_at_home", "if you have an internet connection at home"),
    ):
        value = str(form.get(field, ""))
        if value not in ("yes", "no"):
            errors.add(field, f"Select yes {question}")
        answers[field] = value
    answers["consent"] = str(form.get("consent", "")) == "yes"
    if not answers["consent"]:
        errors.add("consent", "Confirm that we may keep these details to run the programme")
    return answers


def _body(answers: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in answers.items() if v not in ("", None)}
    for field in ("receives_benefits", "has_device_at_home", "has_connection_at_home"):
        if field in body:
            body[field] = body[field] == "yes"
    if "year_of_birth" in body:
        body["year_of_birth"] = int(body["year_of_birth"])
    return body


@router.get("/sessions/{session_id}/join")
async def join(
    session_id: uuid.UUID, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    session = await frontend.client(SessionsApi).one(str(session_id))
    return frontend.render(
        request,
        "help/join.html",
        page_title="Check you can join",
        session=session,
        answers={},
        yes_no=YES_NO,
    )


@router.post("/sessions/{session_id}/join")
async def join_answer(
    session_id: uuid.UUID, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    session = await frontend.client(SessionsApi).one(str(session_id))
    form = await request.form()
    errors = FormErrors()
    answers = _facts(form, errors)
    if not errors:
        try:
            enrolment = await frontend.client(SessionsApi, user).enrol(
                str(session_id), _body(answers)
            )
        except ApiError as error:
            if error.status not in (409, 422):
                raise
            _explain(error, errors)
        else:
            return RedirectResponse(f"/help/bookings/{enrolment['id']}?new=1", status_code=303)
    return frontend.render(
        request,
        "help/join.html",
        status_code=400,
        page_title="Check you can join",
        session=session,
        answers=answers,
        yes_no=YES_NO,
        errors=errors,
    )


def _explain(error: ApiError, errors: FormErrors) -> None:
    """The API's refusal in the page's words, on the question it is about."""
    if error.code == "not-eligible":
        for rule in error.extras.get("unmet_rules") or []:
            field = RULE_FIELDS.get(str(rule.get("rule")), "postcode")
            errors.add(field, str(rule.get("reason") or "You cannot join this programme"))
        if errors:
            return
    if error.code == "consent-required":
        errors.add("consent", "Confirm that we may keep these details to run the programme")
        return
    if error.code == "postcode-not-in-milton-keynes-area":
        errors.add("postcode", "Enter a postcode in the Milton Keynes area, like MK9 3EJ")
        return
    if error.code == "already-enrolled":
        errors.add("booking", "You have already booked this session", anchor=None)
        return
    for field, message in error.errors.items():
        errors.add(
            field if field in RULE_FIELDS.values() else "booking",
            message,
            anchor=None if field not in RULE_FIELDS.values() else "",
        )
    if not errors:
        errors.add("booking", error.detail or error.title, anchor=None)


@router.get("/bookings")
async def bookings(request: Request, frontend: FrontendDep, user: CurrentUser) -> Response:
    items = await frontend.client(EnrolmentsApi, user).mine()
    return frontend.render(
        request,
        "help/bookings.html",
        page_title="My bookings",
        items=items,
        status_label=status_label,
    )


@router.get("/bookings/{enrolment_id}")
async def booking(
    enrolment_id: uuid.UUID,
    request: Request,
    frontend: FrontendDep,
    user: CurrentUser,
    new: int = 0,
) -> Response:
    enrolment = await frontend.client(EnrolmentsApi, user).one(str(enrolment_id))
    return frontend.render(
        request,
        "help/booking.html",
        page_title="Your booking",
        item=enrolment,
        new=bool(new),
        status_label=status_label,
    )


@router.get("/bookings/{enrolment_id}/cancel")
async def cancel_page(
    enrolment_id: uuid.UUID, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    enrolment = await frontend.client(EnrolmentsApi, user).one(str(enrolment_id))
    return frontend.render(
        request, "help/cancel.html", page_title="Cancel your booking", item=enrolment
    )


@router.post("/bookings/{enrolment_id}/cancel")
async def cancel(
    enrolment_id: uuid.UUID, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    try:
        await frontend.client(EnrolmentsApi, user).cancel(str(enrolment_id))
    except ApiError as error:
        if error.code != "enrolment-not-active":
            raise
    return RedirectResponse("/help/bookings?cancelled=1", status_code=303)
