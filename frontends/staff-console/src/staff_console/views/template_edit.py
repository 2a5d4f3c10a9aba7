"""A template's edit page: name, subject (email) and message, saved as a new version; its
preview follows the text as the editor types (``static/live-preview.js`` posts the form to
``live-preview``, which answers the preview as an HTML fragment rendered through the
notifications API); without JavaScript the Preview button shows the same, on the page."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from staff_console.auth import StaffUser, require_staff
from staff_console.clients import TemplatesApi
from webkit.api import ApiError
from webkit.app import FrontendDep
from webkit.forms import FormErrors

router = APIRouter(prefix="/notifications/templates", dependencies=[Depends(require_staff)])
REFUSED = (400, 422)


async def _preview(
    api: TemplatesApi,
    template_id: str,
    personalisation: dict[str, str],
    *,
    subject: str | None = None,
    body: str | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """The preview, or why the API could not show one."""
    try:
        return await api.preview_draft(
            template_id, personalisation, subject=subject, body=body
        ), None
    except ApiError as exc:
        if exc.status not in REFUSED:
            raise
        return None, exc.detail or exc.title


def _draft(item: dict[str, Any], form: Any) -> dict[str, str]:
    values = {
        "name": str(form.get("name", item["name"])).strip(),
        "body": str(form.get("body", item["body"])).replace("\r\n", "\n"),
    }
    if item["type"] == "email":
        values["subject"] = str(form.get("subject", item.get("subject") or "")).strip()
    return values


def _edit_page(
    request: Request,
    frontend: Any,
    item: dict[str, Any],
    values: dict[str, str],
    *,
    preview: dict[str, Any] | None,
    preview_error: str | None,
    errors: FormErrors | None = None,
) -> Response:
    response: Response = frontend.render(
        request,
        "notifications/edit.html",
        status_code=400 if errors else 200,
        page_title=f"Edit {item['name']}",
        item=item,
        values=values,
        preview=preview,
        preview_error=preview_error,
        errors=errors,
    )
    return response


@router.get("/{template_id}/edit")
async def edit(
    template_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    api = frontend.client(TemplatesApi, user)
    item = await api.one(str(template_id))
    preview, problem = await _preview(api, str(template_id), {})
    values = {"name": item["name"], "subject": item.get("subject") or "", "body": item["body"]}
    return _edit_page(request, frontend, item, values, preview=preview, preview_error=problem)


@router.post("/{template_id}/edit")
async def save(
    template_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    api = frontend.client(TemplatesApi, user)
    item = await api.one(str(template_id))
    values = _draft(item, form)
    errors = FormErrors()
    if not values["name"]:
        errors.add("name", "Enter the template's name")
    if item["type"] == "email" and not values.get("subject"):
        errors.add("subject", "Enter the subject")
    if not values["body"].strip():
        errors.add("body", "Enter the message")
    preview, problem = None, None
    if not errors and form.get("action") == "save":
        try:
            saved = await api.update(str(template_id), values)
        except ApiError as exc:
            if exc.status not in REFUSED:
                raise
            for name, message in exc.errors.items():
                errors.add(name if name in values else "body", message)
            if not exc.errors:
                errors.add("body", exc.detail or exc.title)
        else:
            return RedirectResponse(
                f"/notifications/templates/{template_id}?saved={saved['version']}", 303
            )
    if not errors:  # Preview (without JavaScript)
        preview, problem = await _preview(
            api, str(template_id), {}, subject=values.get("subject"), body=values["body"]
        )
    return _edit_page(
        request,
        frontend,
        item,
        values,
        preview=preview,
        preview_error=problem,
        errors=errors or None,
    )


@router.post("/{template_id}/live-preview")
async def live_preview(
    template_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    """The preview as an HTML fragment, for the script: of the edit page's text when the
    form has it, else of the saved text, with the placeholder values filled in so far."""
    form = await request.form()
    personalisation = {
        str(key)[2:]: str(value).strip()
        for key, value in form.multi_items()
        if str(key).startswith("p-") and str(value).strip()
    }
    body = str(form["body"]).replace("\r\n", "\n") if "body" in form else None
    subject = str(form["subject"]).strip() if "subject" in form else None
    preview, problem = None, None
    if body is not None and not body.strip():
        problem = "the message is empty"
    else:
        preview, problem = await _preview(
            frontend.client(TemplatesApi, user),
            str(template_id),
            personalisation,
            subject=subject,
            body=body,
        )
    html = frontend.env.get_template("notifications/_preview.html").render(
        preview=preview, preview_error=problem
    )
    return HTMLResponse(html, headers={"cache-control": "no-store", "x-preview-fragment": "1"})
