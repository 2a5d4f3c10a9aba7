"""Bulk import (upload a CSV → preview with every bad row and field named → import all or
nothing, with its progress shown) and export of the catalogue, on the API's
``/api/v1/services/import-jobs`` and ``/export``.

The preview checks what the console can see in the file itself (the header, a name on every
row, cells beyond the header, the ``attributes`` JSON); the API checks everything again when
the import starts, and any row it refuses is named the same way, with nothing imported.
The file travels from the preview to the import in a hidden field, so nothing is kept on the
server between the two pages.

The import runs in the background (an import job of citizen-services): *Import* goes to the
job's page, ``/catalogue/import/jobs/{job_id}``, which shows "Imported 120 of 400" while it
runs, and when it is done lists what was imported, or says why nothing was. Without
JavaScript the page has a *Check progress* button (the page again); with it,
``import-progress.mjs`` (a static file: the CSP allows no inline script) asks
``…/progress`` every second, updates the figures and loads the page again when the job ends.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from staff_console.auth import StaffUser, require_staff
from staff_console.clients import CatalogueApi
from webkit.api import ApiError
from webkit.app import Frontend, FrontendDep
from webkit.forms import FormErrors

router = APIRouter(prefix="/catalogue", dependencies=[Depends(require_staff)])

#: The job page's script and style (the CSP allows no inline script or style).
STATIC = Path(__file__).resolve().parent.parent / "static"
MAX_UPLOAD_BYTES = 900 * 1024  # under the form parser's 1 MB a field
#: The API's CSV columns (docs/citizen-services.md, bulk import).
COLUMNS = (
    "name",
    "description",
    "service_code",
    "slug",
    "keywords",
    "groups",
    "department",
    "lgsl_codes",
    "online_url",
    "phone",
    "venue",
    "email",
    "sms",
    "eligibility",
    "fees",
    "audience",
    "opening_hours",
    "accessibility_statement_url",
    "last_reviewed_on",
    "attributes",
)


def _problem(row: int, field: str, message: str) -> dict[str, Any]:
    return {"row": row, "field": field, "message": message}


def preview(text: str) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The file's records (row 1 is the line after the header) and the problems seen in
    it."""
    problems: list[dict[str, Any]] = []
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames or []
        if "name" not in header:
            problems.append(_problem(0, "name", "the header has no name column"))
        problems += [
            _problem(0, column, "is not a catalogue column")
            for column in header
            if column not in COLUMNS
        ]
        records: list[dict[str, str]] = []
        for row, raw in enumerate(reader, start=1):
            if None in raw:
                problems.append(_problem(row, "", "has more cells than the header"))
            record = {k: v or "" for k, v in raw.items() if isinstance(k, str)}
            if not record.get("name", "").strip():
                problems.append(_problem(row, "name", "is empty"))
            if record.get("attributes", "").strip():
                try:
                    if not isinstance(json.loads(record["attributes"]), list):
                        raise ValueError
                except ValueError:
                    problems.append(_problem(row, "attributes", "is not a JSON array"))
            records.append(record)
    except csv.Error as exc:
        return [], [_problem(0, "", f"is not a CSV file the console can read ({exc})")]
    if not records and not problems:
        problems.append(_problem(0, "", "has no services in it"))
    return records, problems


def _messages(problems: list[dict[str, Any]]) -> FormErrors:
    errors = FormErrors()
    for p in problems:
        row, field = p.get("row", 0), str(p.get("field") or "")
        where = f"Row {row} (line {int(row) + 1})" if row else "The file"
        what = f"{field.replace('_', ' ')}: " if field else ""
        errors.add(f"problem-{len(errors)}", f"{where}: {what}{p.get('message', '')}", None)
    return errors


def _preview_page(
    request: Request,
    frontend: Frontend,
    text: str,
    problems: list[dict[str, Any]],
    *,
    status_code: int,
    imported_none: bool = False,
) -> Response:
    records, seen = preview(text)
    problems = problems or seen
    bad_rows = {int(p.get("row") or 0) for p in problems}
    return frontend.render(
        request,
        "catalogue/import_preview.html",
        status_code=status_code,
        page_title="Check the services before importing them",
        records=records,
        bad_rows=bad_rows,
        text=text,
        errors=_messages(problems) if problems else None,
        imported_none=imported_none,
    )


@router.get("/import")
async def upload_form(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    return frontend.render(request, "catalogue/import.html", page_title="Import services")


@router.post("/import")
async def upload(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    form = await request.form()
    upload = form.get("file")
    errors = FormErrors()
    text = ""
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors.add("file", "Select a CSV file")
    else:
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            errors.add("file", "The file must be smaller than 900 KB")
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                errors.add("file", "The file must be a CSV saved as UTF-8")
    if errors:
        return frontend.render(
            request,
            "catalogue/import.html",
            status_code=400,
            page_title="Import services",
            errors=errors,
        )
    _, problems = preview(text)
    return _preview_page(request, frontend, text, problems, status_code=400 if problems else 200)


@router.post("/import/confirm")
async def confirm(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    form = await request.form()
    text = str(form.get("csv", ""))
    _, problems = preview(text)
    if problems:
        return _preview_page(request, frontend, text, problems, status_code=400)
    try:
        job = await frontend.client(CatalogueApi, user).start_import(text)
    except ApiError as exc:
        if exc.status not in (400, 413, 415, 422):
            raise
        refused = exc.extras.get("records") or [_problem(0, "", exc.detail or exc.title)]
        return _preview_page(request, frontend, text, refused, status_code=422, imported_none=True)
    return RedirectResponse(f"/catalogue/import/jobs/{job['id']}", status_code=303)


FINISHED = ("succeeded", "failed")


def _progress(job: dict[str, Any]) -> dict[str, Any]:
    """What the job's page says about it, for the page and for its script."""
    done, total = int(job.get("rows_done") or 0), int(job.get("rows_total") or 0)
    status = str(job.get("status") or "queued")
    if status == "queued":
        message = f"Waiting to start: 0 of {total} imported"
    else:
        message = f"Imported {done} of {total}"
    return {
        "status": status,
        "finished": status in FINISHED,
        "rows_done": done,
        "rows_total": total,
        "message": message,
    }


@router.get("/import/jobs/{job_id}")
async def job_page(
    job_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    job = await frontend.client(CatalogueApi, user).import_job(str(job_id))
    if job["status"] == "succeeded":
        imported = job.get("services") or []
        return frontend.render(
            request,
            "catalogue/import_done.html",
            page_title=f"{len(imported)} service{'' if len(imported) == 1 else 's'} "
            "imported as drafts",
            imported=imported,
        )
    if job["status"] == "failed":
        return frontend.render(
            request,
            "catalogue/import_failed.html",
            page_title="The import failed: nothing was imported",
            job=job,
            problems=list(_messages(job.get("errors") or []).values()),
        )
    return frontend.render(
        request,
        "catalogue/import_progress.html",
        page_title="Importing services",
        job=job,
        progress=_progress(job),
    )


@router.get("/import/jobs/{job_id}/progress")
async def job_progress(job_id: uuid.UUID, frontend: FrontendDep, user: StaffUser) -> Response:
    """The job's progress as JSON, for ``import-progress.mjs``."""
    job = await frontend.client(CatalogueApi, user).import_job(str(job_id))
    return JSONResponse(_progress(job), headers={"cache-control": "no-store"})


@router.get("/import/progress.mjs")
async def progress_script(user: StaffUser) -> Response:
    return FileResponse(
        STATIC / "import-progress.mjs",
        media_type="text/javascript",
        headers={"cache-control": "private, max-age=3600"},
    )


@router.get("/import/progress.css")
async def progress_style(user: StaffUser) -> Response:
    return FileResponse(
        STATIC / "import-progress.css",
        media_type="text/css",
        headers={"cache-control": "private, max-age=3600"},
    )


@router.get("/export")
async def export(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    text = await frontend.client(CatalogueApi, user).export_csv()
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="services.csv"',
            "cache-control": "no-store",
        },
    )
