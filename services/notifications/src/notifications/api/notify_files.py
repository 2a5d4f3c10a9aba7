"""The download page of files sent by email (Notify's ``prepare_upload``):
``/api/v1/files/{id}?key=…``, public (anonymous, through the gateway), plain GOV.UK-styled
HTML that needs no JavaScript.

* ``GET`` shows the page: a download link, or — when the sender asked for it — a form
  asking for the email address the file was sent to (``GET`` never changes anything, so
  mail scanners following links do no harm);
* ``POST`` (the form) checks the address and answers the file itself;
* ``GET …/download`` answers the file when no confirmation was asked.

A wrong id or key, or an expired file, are one and the same 404 page. The key is in the
URL, so no page sends a ``Referer`` and nothing is cached."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from notifications.application.notify_files import is_recipient, open_file
from notifications.domain.notify_files import download_name
from notifications.persistence.notify_files import NotifyFileRepository
from notifications.persistence.tables import NotifyFile
from servicekit.deps import ReadDbDep

PREFIX = "/api/v1/files"
router = APIRouter(prefix=PREFIX, tags=["files"], include_in_schema=False)

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
_STYLE = """
body{margin:0;font-family:Arial,sans-serif;color:#0b0c0c;font-size:19px;line-height:1.3}
header{background:#0b0c0c;color:#fff;padding:10px 15px;font-weight:700}
main{max-width:640px;margin:0 auto;padding:30px 15px}
h1{font-size:36px;margin:0 0 20px}
label{display:block;font-weight:700;margin-bottom:5px}
input[type=email]{font-size:19px;padding:5px;width:100%;max-width:400px;border:2px solid #0b0c0c}
button,.button{display:inline-block;margin-top:20px;padding:8px 10px;background:#00703c;
color:#fff;border:0;font-size:19px;text-decoration:none;box-shadow:0 2px 0 #002d18}
.error{border-left:5px solid #d4351c;padding-left:15px;color:#d4351c;font-weight:700}
"""


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} \u2013 Milton Keynes City Council</title>"
        f"<style>{_STYLE}</style></head>"
        "<body><header>Milton Keynes City Council</header>"
        f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>",
        status_code=status_code,
        headers=_HEADERS,
    )


def _gone() -> HTMLResponse:
    return _page(
        "This file is not available",
        "<p>The link may be wrong, or the file may have been deleted after the time "
        "the sender chose.</p><p>Contact the service that sent you the email.</p>",
        404,
    )


def _confirm_form(file_id: str, key: str, error: str | None = None) -> HTMLResponse:
    action = f"{PREFIX}/{quote(file_id)}?key={quote(key)}"
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _page(
        "Confirm your email address",
        f"{problem}<p>To download this file, enter the email address it was sent to.</p>"
        f'<form method="post" action="{html.escape(action)}" novalidate>'
        '<label for="email_address">Email address</label>'
        '<input type="email" id="email_address" name="email_address" autocomplete="email" '
        'spellcheck="false" required>'
        '<br><button type="submit">Continue</button></form>',
        400 if error else 200,
    )


def _file(found: NotifyFile) -> Response:
    name = download_name(found.filename, found.mimetype)
    return Response(
        content=found.content,
        media_type=found.mimetype,
        headers={
            **_HEADERS,
            "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''"
            f"{quote(name)}",
        },
    )


@router.get("/{file_id}")
async def file_page(request: Request, file_id: str, db: ReadDbDep) -> Response:
    key = request.query_params.get("key", "")
    found = await open_file(NotifyFileRepository(db), file_id, key)
    if found is None:
        return _gone()
    if found.confirm_email:
        return _confirm_form(file_id, key)
    href = f"{PREFIX}/{quote(file_id)}/download?key={quote(key)}"
    name = download_name(found.filename, found.mimetype)
    return _page(
        "You have a file to download",
        f"<p>{html.escape(name)} ({max(1, found.size // 1024)} KB)</p>"
        f'<a class="button" href="{html.escape(href)}" download>Download this file</a>',
    )


@router.post("/{file_id}")
async def confirm_and_download(request: Request, file_id: str, db: ReadDbDep) -> Response:
    key = request.query_params.get("key", "")
    found = await open_file(NotifyFileRepository(db), file_id, key)
    if found is None:
        return _gone()
    form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
    given = (form.get("email_address") or [""])[0]
    if not given.strip():
        return _confirm_form(file_id, key, "Enter your email address")
    if found.confirm_email and not is_recipient(found, given):
        return _confirm_form(file_id, key, "This is not the email address the file was sent to")
    return _file(found)


@router.get("/{file_id}/download")
async def download(request: Request, file_id: str, db: ReadDbDep) -> Response:
    key = request.query_params.get("key", "")
    found = await open_file(NotifyFileRepository(db), file_id, key)
    if found is None:
        return _gone()
    if found.confirm_email:
        return _confirm_form(file_id, key)
    return _file(found)
