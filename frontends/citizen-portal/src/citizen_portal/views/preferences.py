"""My contact preferences (email and text message per topic), and the page an unsubscribe
link lands on: GET shows what it does, POST unsubscribes (mail scanners follow links, so a
GET changes nothing). The RFC 8058 one-click POST goes to the API itself and keeps working."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from citizen_portal.clients import PreferencesApi, UnsubscribeApi
from webkit.api import ApiError
from webkit.app import CurrentUser, FrontendDep
from webkit.forms import FormErrors, from_api

router = APIRouter()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MOBILE = re.compile(r"^(\+44\s?7|07)[0-9 ]{9,12}$")
MAX_TOKEN = 1000


@router.get("/preferences")
async def preferences(
    request: Request, frontend: FrontendDep, user: CurrentUser, saved: int = 0
) -> Response:
    current = await frontend.client(PreferencesApi, user).mine()
    return frontend.render(
        request,
        "preferences/edit.html",
        page_title="Your contact preferences",
        current=current,
        form=None,
        saved=bool(saved),
    )


@router.post("/preferences")
async def save_preferences(request: Request, frontend: FrontendDep, user: CurrentUser) -> Response:
    api = frontend.client(PreferencesApi, user)
    current = await api.mine()
    form = await request.form()
    email = str(form.get("email", "")).strip()
    phone = str(form.get("phone", "")).strip()
    errors = FormErrors()
    if email and not _EMAIL.match(email):
        errors.add("email", "Enter an email address in the correct format, like name@example.com")
    if phone and not _MOBILE.match(phone):
        errors.add("phone", "Enter a UK mobile number, like 07700 900 982")
    chosen = {str(v) for v in form.getlist("channels")}
    topics = {
        name: {"email": f"{name}:email" in chosen, "sms": f"{name}:sms" in chosen}
        for name in current["topics"]
    }
    body = {"topics": topics}
    if email != (current.get("email_pending") or current.get("email") or ""):
        body["email"] = email  # type: ignore[assignment]
    if phone != (current.get("phone") or ""):
        body["phone"] = phone  # type: ignore[assignment]
    if not errors:
        try:
            await api.update(body)
        except ApiError as error:
            if error.status not in (400, 422):
                raise
            errors = from_api(
                error.errors, {"email": "email", "phone": "phone"}, fallback="channels"
            )
            if not errors:
                errors.add("channels", error.detail or error.title)
        else:
            return RedirectResponse("/preferences?saved=1", status_code=303)
    return frontend.render(
        request,
        "preferences/edit.html",
        status_code=400,
        page_title="Your contact preferences",
        current=current,
        form={"email": email, "phone": phone, "chosen": chosen},
        saved=False,
        errors=errors,
    )


@router.get("/unsubscribe")
async def unsubscribe_page(request: Request, frontend: FrontendDep, token: str = "") -> Response:
    if not token or len(token) > MAX_TOKEN:
        return frontend.error_page(
            request,
            400,
            "This unsubscribe link is not valid",
            "Check you used the whole link from the email.",
        )
    try:
        about = await frontend.client(UnsubscribeApi).describe(token)
    except ApiError as error:
        if error.status != 400:
            raise
        return frontend.error_page(
            request,
            400,
            "This unsubscribe link is not valid",
            "Check you used the whole link from the email.",
        )
    return frontend.render(
        request,
        "preferences/unsubscribe.html",
        page_title="Unsubscribe",
        about=about,
        token=token,
        done=False,
    )


@router.post("/unsubscribe")
async def unsubscribe(request: Request, frontend: FrontendDep) -> Response:
    form = await request.form()
    token = str(form.get("token", ""))
    if not token or len(token) > MAX_TOKEN:
        return frontend.error_page(
            request,
            400,
            "This unsubscribe link is not valid",
            "Check you used the whole link from the email.",
        )
    try:
        about = await frontend.client(UnsubscribeApi).unsubscribe(token)
    except ApiError as error:
        if error.status != 400:
            raise
        return frontend.error_page(
            request,
            400,
            "This unsubscribe link is not valid",
            "Check you used the whole link from the email.",
        )
    return frontend.render(
        request,
        "preferences/unsubscribe.html",
        page_title="You have unsubscribed",
        about=about,
        token=token,
        done=True,
    )
