"""Report a problem: choose a service → where → the service's own questions (from its Open311
attribute definitions) → description → contact details with consent → check your answers →
confirmation. One question per page, answers kept in the session until sent; the API's
field errors go back to the page and the input they are about."""

from __future__ import annotations

import re
import time
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from citizen_portal.clients import Open311Api, ServiceRequestsApi
from webkit.api import ApiError
from webkit.app import CurrentUser, Frontend, FrontendDep
from webkit.forms import FormErrors
from webkit.session import session_of

router = APIRouter(prefix="/report")
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
#: The longest description the portal takes (the API takes 4,000; the answers travel in the
#: session cookie until they are sent).
MAX_DESCRIPTION = 1000
STEPS = ("location", "questions", "description", "contact", "check")
_POSTCODE = re.compile(r"^[A-Za-z]{1,2}[0-9][0-9A-Za-z]?\s*[0-9][A-Za-z]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{3,40}$")
_WORD = {"lat": "latitude", "long": "longitude"}
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
#: Where an API field error belongs: (page, input name).
_FIELD_PAGES = {
    "lat": ("location", "lat"),
    "long": ("location", "long"),
    "address": ("location", "address"),
    "description": ("description", "description"),
    "contact.email": ("contact", "email"),
    "contact.first_name": ("contact", "first_name"),
    "contact.last_name": ("contact", "last_name"),
    "contact.phone": ("contact", "phone"),
    "contact_consent": ("contact", "consent"),
}


def _draft(request: Request, code: str) -> dict[str, Any]:
    session = session_of(request)
    draft = session.get("report")
    if not isinstance(draft, dict) or draft.get("code") != code:
        draft = {"code": code, "answers": {}}
        session["report"] = draft
    return draft


def _save(request: Request, draft: dict[str, Any]) -> None:
    session_of(request)["report"] = draft


def _pending_errors(request: Request, page: str) -> FormErrors | None:
    """Errors the API gave for this page at the last submission (shown once)."""
    session = session_of(request)
    stored = session.get("report_errors")
    if not isinstance(stored, dict) or page not in stored:
        return None
    errors = FormErrors(stored.pop(page))
    session["report_errors"] = stored
    if "send" in errors:
        errors.anchors["send"] = None  # about the whole report: not linked to an input
    return errors


#: The reportable services (Open311 ``services.json``), kept this long by each process.
SERVICES_SECONDS = 60.0
_services: dict[str, tuple[float, list[dict[str, Any]]]] = {}


async def _reportable(frontend: Frontend) -> list[dict[str, Any]]:
    cached = _services.get("all")
    if cached and time.monotonic() - cached[0] < SERVICES_SECONDS:
        return cached[1]
    services = await frontend.client(Open311Api).services()
    _services["all"] = (time.monotonic(), services)
    return services


async def _definition(frontend: Frontend, code: str) -> dict[str, Any]:
    found = await frontend.client(Open311Api).definition(code)
    definition = found[0] if isinstance(found, list) and found else found
    if not isinstance(definition, dict):
        raise ApiError(404, "Not found")
    # the definition has no name: Open311's service list does
    definition.setdefault("service_name", _service_name(await _reportable(frontend), code))
    definition["attributes"] = sorted(
        definition.get("attributes") or [], key=lambda a: a.get("order") or 0
    )
    return definition


def _questions(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in definition["attributes"] if a.get("variable", True)]


def _service_name(services: list[dict[str, Any]], code: str) -> str:
    return next((s["service_name"] for s in services if s["service_code"] == code), code)


@router.get("")
async def choose(request: Request, frontend: FrontendDep) -> Response:
    services = await _reportable(frontend)
    groups: dict[str, list[dict[str, Any]]] = {}
    for service in sorted(services, key=lambda s: s["service_name"]):
        groups.setdefault(service.get("group") or "Other", []).append(service)
    return frontend.render(
        request, "report/choose.html", page_title="Report a problem", groups=sorted(groups.items())
    )


@router.get("/{code}")
async def start(code: Code, user: CurrentUser, request: Request) -> Response:
    _draft(request, code)
    return RedirectResponse(f"/report/{code}/location", status_code=303)


def _page(
    frontend: Frontend,
    request: Request,
    template: str,
    code: str,
    definition: dict[str, Any],
    draft: dict[str, Any],
    errors: FormErrors | None,
    **extra: Any,
) -> Response:
    return frontend.render(
        request,
        template,
        status_code=400 if errors and request.method == "POST" else 200,
        errors=errors,
        code=code,
        problem_name=definition.get("service_name") or draft.get("name") or "this problem",
        draft=draft,
        back=_back(code, template, definition),
        **extra,
    )


def _back(code: str, template: str, definition: dict[str, Any]) -> str:
    step = template.split("/")[-1].removesuffix(".html")
    if step == "location":
        return "/report"
    index = STEPS.index(step)
    previous = STEPS[index - 1]
    if previous == "questions" and not _questions(definition):
        previous = "location"
    return f"/report/{code}/{previous}"


# -- where --------------------------------------------------------------------------------
@router.get("/{code}/location")
async def location(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    draft["name"] = definition.get("service_name") or draft.get("name")
    _save(request, draft)
    return _page(
        frontend,
        request,
        "report/location.html",
        code,
        definition,
        draft,
        _pending_errors(request, "location"),
    )


@router.post("/{code}/location")
async def location_answer(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    form = await request.form()
    address = str(form.get("address", "")).strip()
    postcode = str(form.get("postcode", "")).strip().upper()
    lat, long = str(form.get("lat", "")).strip(), str(form.get("long", "")).strip()
    draft.update(address=address, postcode=postcode, lat=lat, long=long)
    errors = FormErrors()
    if postcode and not _POSTCODE.match(postcode):
        errors.add("postcode", "Enter a real postcode, like MK9 3EJ")
    if lat or long:
        for name, value, low, high in (("lat", lat, 51.95, 52.20), ("long", long, -0.95, -0.55)):
            if not value:
                errors.add(name, "Enter both the latitude and the longitude")
            elif not _NUMBER.match(value):
                errors.add(
                    name,
                    f"The {_WORD[name]} must be a number, like {low}",
                )
            elif not low <= float(value) <= high:
                errors.add(name, "The place must be in Milton Keynes")
    elif not address:
        errors.add("address", "Enter the address or describe where the problem is")
    if len(address) > 400:
        errors.add("address", "The address must be 400 characters or fewer")
    _save(request, draft)
    if errors:
        return _page(frontend, request, "report/location.html", code, definition, draft, errors)
    following = "questions" if _questions(definition) else "description"
    return RedirectResponse(f"/report/{code}/{following}", status_code=303)


# -- the service's own questions ------------------------------------------------------------
@router.get("/{code}/questions")
async def questions(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    return _page(
        frontend,
        request,
        "report/questions.html",
        code,
        definition,
        draft,
        _pending_errors(request, "questions"),
        questions=_questions(definition),
    )


def _read_answer(form: Any, attribute: dict[str, Any], errors: FormErrors) -> Any:
    name = "attr-" + attribute["code"]
    label = attribute.get("description") or attribute["code"]
    kind = attribute.get("datatype")
    keys = {str(v["key"]) for v in attribute.get("values") or []}
    if kind == "multivaluelist":
        chosen = [str(v) for v in form.getlist(name) if str(v) in keys]
        if attribute.get("required") and not chosen:
            errors.add(name, f"Select at least one option: {label}")
        return chosen
    if kind == "datetime":
        parts = {p: str(form.get(f"{name}-{p}", "")).strip() for p in ("day", "month", "year")}
        if not any(parts.values()):
            if attribute.get("required"):
                errors.add(name, f"Enter a date: {label}")
            return parts
        try:
            date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        except ValueError:
            errors.add(name, f"Enter a real date, like 27 3 2026: {label}")
        return parts
    value = str(form.get(name, "")).strip()
    if not value:
        if attribute.get("required"):
            verb = "Select" if kind == "singlevaluelist" else "Enter"
            errors.add(name, f"{verb} an answer: {label}")
        return value
    if kind == "singlevaluelist" and value not in keys:
        errors.add(name, f"Select an answer: {label}")
    elif kind == "number" and not _NUMBER.match(value):
        errors.add(name, f"Enter a number: {label}")
    elif len(value) > 1000:
        errors.add(name, f"The answer must be 1,000 characters or fewer: {label}")
    return value


@router.post("/{code}/questions")
async def questions_answer(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    form = await request.form()
    errors = FormErrors()
    answers = {a["code"]: _read_answer(form, a, errors) for a in _questions(definition)}
    draft["answers"] = answers
    _save(request, draft)
    if errors:
        return _page(
            frontend,
            request,
            "report/questions.html",
            code,
            definition,
            draft,
            errors,
            questions=_questions(definition),
        )
    return RedirectResponse(f"/report/{code}/description", status_code=303)


# -- description ------------------------------------------------------------------------------
@router.get("/{code}/description")
async def description(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    return _page(
        frontend,
        request,
        "report/description.html",
        code,
        definition,
        _draft(request, code),
        _pending_errors(request, "description"),
        limit=MAX_DESCRIPTION,
    )


@router.post("/{code}/description")
async def description_answer(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    form = await request.form()
    text = str(form.get("description", "")).strip()
    draft["description"] = text
    limit = MAX_DESCRIPTION
    errors = FormErrors()
    if not text:
        errors.add("description", "Describe the problem")
    elif len(text) > limit:
        errors.add("description", f"The description must be {limit:,} characters or fewer")
    _save(request, draft)
    if errors:
        draft["description"] = text[: limit + 100]
        return _page(
            frontend,
            request,
            "report/description.html",
            code,
            definition,
            draft,
            errors,
            limit=limit,
        )
    return RedirectResponse(f"/report/{code}/contact", status_code=303)


# -- contact details ----------------------------------------------------------------------------
@router.get("/{code}/contact")
async def contact(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    return _page(
        frontend,
        request,
        "report/contact.html",
        code,
        definition,
        _draft(request, code),
        _pending_errors(request, "contact"),
    )


@router.post("/{code}/contact")
async def contact_answer(
    code: Code, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    form = await request.form()
    fields = ("email", "first_name", "last_name", "phone")
    details = {f: str(form.get(f, "")).strip()[:254] for f in fields}
    consent = str(form.get("consent", ""))
    public = str(form.get("public", ""))
    draft.update(contact=details, consent=consent, public=public)
    errors = FormErrors()
    if consent not in ("yes", "no"):
        errors.add("consent", "Select yes if we may contact you about this report")
    if consent == "yes":
        if not details["email"] and not details["phone"]:
            errors.add("email", "Enter an email address or a phone number")
        if details["email"] and not _EMAIL.match(details["email"]):
            errors.add(
                "email", "Enter an email address in the correct format, like name@example.com"
            )
        if details["phone"] and not _PHONE.match(details["phone"]):
            errors.add("phone", "Enter a telephone number, like 01908 252570 or 07700 900 982")
    if public not in ("yes", "no"):
        errors.add("public", "Select yes if this report may be shown publicly")
    _save(request, draft)
    if errors:
        return _page(frontend, request, "report/contact.html", code, definition, draft, errors)
    return RedirectResponse(f"/report/{code}/check", status_code=303)


# -- check your answers, send -----------------------------------------------------------------
def _answer_text(attribute: dict[str, Any], value: Any) -> str:
    names = {str(v["key"]): v["name"] for v in attribute.get("values") or []}
    if attribute.get("datatype") == "multivaluelist":
        return ", ".join(names.get(v, v) for v in value or [])
    if attribute.get("datatype") == "datetime" and isinstance(value, dict):
        if not any(value.values()):
            return ""
        try:
            return date(int(value["year"]), int(value["month"]), int(value["day"])).strftime(
                "%-d %B %Y"
            )
        except (ValueError, KeyError):
            return ""
    return str(names.get(str(value), value or ""))


def _rows(code: str, definition: dict[str, Any], draft: dict[str, Any]) -> list[dict[str, Any]]:
    where = ", ".join(p for p in (draft.get("address"), draft.get("postcode")) if p)
    if draft.get("lat"):
        where = (
            where + "; " if where else ""
        ) + f"latitude {draft['lat']}, longitude {draft['long']}"
    rows: list[dict[str, Any]] = [
        {
            "key": "Problem",
            "value": definition.get("service_name") or draft.get("name"),
            "href": "/report",
            "action": "Change",
        },
        {"key": "Where", "value": where, "href": f"/report/{code}/location"},
    ]
    answers = draft.get("answers") or {}
    for attribute in _questions(definition):
        rows.append(
            {
                "key": attribute.get("description") or attribute["code"],
                "value": _answer_text(attribute, answers.get(attribute["code"])),
                "href": f"/report/{code}/questions",
            }
        )
    rows.append(
        {
            "key": "Description",
            "value": draft.get("description"),
            "href": f"/report/{code}/description",
        }
    )
    contact = draft.get("contact") or {}
    if draft.get("consent") == "yes":
        who = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
        how = ", ".join(p for p in (contact.get("email"), contact.get("phone")) if p)
        rows.append(
            {
                "key": "Contact details",
                "value": "; ".join(p for p in (who, how) if p),
                "href": f"/report/{code}/contact",
            }
        )
    else:
        rows.append(
            {
                "key": "Contact details",
                "value": "Do not contact me",
                "href": f"/report/{code}/contact",
            }
        )
    rows.append(
        {
            "key": "Show publicly",
            "value": "Yes" if draft.get("public") == "yes" else "No",
            "href": f"/report/{code}/contact",
        }
    )
    return rows


def _missing_step(code: str, definition: dict[str, Any], draft: dict[str, Any]) -> str | None:
    if not (draft.get("address") or draft.get("lat")):
        return "location"
    if _questions(definition) and not draft.get("answers"):
        return "questions"
    if not draft.get("description"):
        return "description"
    if draft.get("consent") not in ("yes", "no"):
        return "contact"
    return None


@router.get("/{code}/check")
async def check(code: Code, request: Request, frontend: FrontendDep, user: CurrentUser) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    missing = _missing_step(code, definition, draft)
    if missing:
        return RedirectResponse(f"/report/{code}/{missing}", status_code=303)
    return _page(
        frontend,
        request,
        "report/check.html",
        code,
        definition,
        draft,
        _pending_errors(request, "check"),
        rows=_rows(code, definition, draft),
    )


def _body(definition: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    answers = draft.get("answers") or {}
    for attribute in _questions(definition):
        value = answers.get(attribute["code"])
        if attribute.get("datatype") == "datetime" and isinstance(value, dict):
            if any(value.values()):
                day = date(int(value["year"]), int(value["month"]), int(value["day"]))
                value = day.isoformat() + "T00:00:00"
            else:
                value = None
        elif attribute.get("datatype") == "number" and value:
            value = float(value)
        if value not in (None, "", []):
            attributes[attribute["code"]] = value
    body: dict[str, Any] = {
        "service_code": definition.get("service_code") or draft["code"],
        "description": draft.get("description") or "",
        "attributes": attributes,
        "public": draft.get("public") == "yes",
    }
    where = ", ".join(p for p in (draft.get("address"), draft.get("postcode")) if p)
    if where:
        body["address"] = where
    if draft.get("lat"):
        body["lat"], body["long"] = float(draft["lat"]), float(draft["long"])
    if draft.get("consent") == "yes":
        contact = {k: v for k, v in (draft.get("contact") or {}).items() if v}
        body["contact"] = contact
        body["contact_consent"] = True
    return body


@router.post("/{code}/check")
async def send(code: Code, request: Request, frontend: FrontendDep, user: CurrentUser) -> Response:
    definition = await _definition(frontend, code)
    draft = _draft(request, code)
    try:
        created = await frontend.client(ServiceRequestsApi, user).create(_body(definition, draft))
    except ApiError as error:
        if error.status not in (400, 409, 422):
            raise
        by_page: dict[str, dict[str, str]] = {}
        for field, message in error.errors.items():
            page, name = _FIELD_PAGES.get(field, ("check", "send"))
            if field.startswith("attributes."):
                page, name = "questions", "attr-" + field.split(".", 1)[1]
            text = message[0].upper() + message[1:] if message else "Check this answer"
            by_page.setdefault(page, {}).setdefault(name, text)
        if not by_page:
            by_page["check"] = {"send": error.detail or error.title}
        session_of(request)["report_errors"] = by_page
        first = next(step for step in STEPS if step in by_page)
        return RedirectResponse(f"/report/{code}/{first}", status_code=303)
    session = session_of(request)
    session.pop("report", None)
    session.pop("report_errors", None)
    session["last_report"] = {"id": created["id"], "name": definition.get("service_name") or code}
    return RedirectResponse(f"/report/sent/{created['id']}", status_code=303)


@router.get("/sent/{request_id}")
async def sent(
    request_id: str, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    last = session_of(request).get("last_report")
    if not isinstance(last, dict) or last.get("id") != request_id:
        return RedirectResponse(f"/requests/{request_id}", status_code=303)
    return frontend.render(request, "report/sent.html", page_title="Report sent", report=last)
