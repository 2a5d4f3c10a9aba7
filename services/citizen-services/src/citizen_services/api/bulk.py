"""Bulk import and export of catalogue entries (staff), CSV and JSON.

Import validates every record first; on any error nothing is written and the 422 problem
names each bad record: ``errors: [{row, field, message}]`` where ``row`` counts data records
from 1 (a CSV's header line is not a record, so record 1 is the spreadsheet's line 2).
Imported entries are drafts. CSV list cells (keywords, groups, lgsl_codes, audience) are
separated by ``;``; ``attributes`` is a JSON array in its cell; channels are the columns
``online_url, phone, venue, email, sms``.

The CSV export is written by ``servicekit.csvsafe``: a cell that would start a spreadsheet
formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) goes out with a single quote in
front, and every cell is quoted. The CSV import takes that quote off again
(``csvsafe.restore``: one leading quote, only from a cell that after its leading quotes
starts with a formula character), so importing an export restores the original values.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from citizen_services.api.deps import (
    CatalogueInUow,
    CatalogueReads,
    ImportJobReads,
    ImportJobsInUow,
)
from citizen_services.api.headers import header
from citizen_services.api.schemas import ImportJobPublic, ServiceCreate, ServicePublic
from citizen_services.application import catalogue, imports
from servicekit import csvsafe
from servicekit.deps import UowDep
from servicekit.errors import DomainError
from servicekit.identity import StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/services", tags=["catalogue"])

MAX_BYTES = 5 * 1024 * 1024
MAX_RECORDS = 5000
CHANNELS = ("online_url", "phone", "venue", "email", "sms")
LISTS = ("keywords", "groups", "lgsl_codes", "audience")
COLUMNS = (
    "name",
    "description",
    "service_code",
    "slug",
    "keywords",
    "groups",
    "department",
    "lgsl_codes",
    *CHANNELS,
    "eligibility",
    "fees",
    "audience",
    "opening_hours",
    "accessibility_statement_url",
    "last_reviewed_on",
    "attributes",
)
#: The columns ``CreateService`` takes by name (the rest are its ``details``).
CORE_COLUMNS = COLUMNS[:7]
CSV_TYPE, JSON_TYPE = "text/csv", "application/json"


def _csv_or_json(schema: str) -> dict[str, Any]:
    """The ``content`` of a body of many entries, in the OpenAPI document: CSV text, or a
    JSON array of ``schema``."""
    return {
        CSV_TYPE: {"schema": {"type": "string"}},
        JSON_TYPE: {
            "schema": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
        },
    }


def _csv_record(
    raw: dict[str | None, Any], errors: list[dict[str, Any]], row: int
) -> dict[str, Any]:
    if None in raw:
        errors.append({"row": row, "field": "", "message": "more cells than columns"})
    out: dict[str, Any] = {}
    channels: dict[str, str] = {}
    for key, value in raw.items():
        if key is None or value is None or value == "":
            continue
        value = csvsafe.restore(value)
        if key in CHANNELS:
            channels[key] = value
        elif key in LISTS:
            out[key] = [part.strip() for part in value.split(";") if part.strip()]
        elif key == "attributes":
            try:
                out[key] = json.loads(value)
            except ValueError:
                errors.append({"row": row, "field": "attributes", "message": "not a JSON array"})
        else:
            out[key] = value
    if channels:
        out["channels"] = channels
    return out


def _records(body: bytes, content_type: str) -> list[Any]:
    if len(body) > MAX_BYTES:
        raise catalogue.ImportRejected(
            f"The file is over {MAX_BYTES} bytes.",
            errors=[{"row": 0, "field": "", "message": "file too large"}],
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise catalogue.ImportRejected(
            "The file is not UTF-8.", errors=[{"row": 0, "field": "", "message": "not UTF-8"}]
        ) from None
    if content_type == JSON_TYPE:
        try:
            data = json.loads(text)
        except ValueError:
            raise catalogue.ImportRejected(
                "The body is not JSON.", errors=[{"row": 0, "field": "", "message": "not JSON"}]
            ) from None
        if not isinstance(data, list):
            raise catalogue.ImportRejected(
                "The body must be a JSON array of services.",
                errors=[{"row": 0, "field": "", "message": "not a JSON array"}],
            )
        return data
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        fields = reader.fieldnames or []
        unknown = sorted(set(fields) - set(COLUMNS))
        if not fields or "name" not in fields or unknown:
            raise catalogue.ImportRejected(
                "The CSV header is not the catalogue's.",
                errors=[{"row": 0, "field": name, "message": "unknown column"} for name in unknown]
                or [{"row": 0, "field": "name", "message": "missing column"}],
                columns=list(COLUMNS),
            )
        errors: list[dict[str, Any]] = []
        records = [_csv_record(raw, errors, n) for n, raw in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise catalogue.ImportRejected(
            "The CSV is malformed.", errors=[{"row": 0, "field": "", "message": str(exc)}]
        ) from None
    if errors:
        raise catalogue.ImportRejected(f"{len(errors)} problem(s) in the file.", errors=errors)
    return records


def command(record: dict[str, Any], actor: str | None) -> catalogue.CreateService:
    """The create command of one valid record (``ValidationError`` if it is not)."""
    data = ServiceCreate.model_validate(record).model_dump()
    core = {k: data.pop(k) for k in CORE_COLUMNS}
    return catalogue.CreateService(**core, details=data, actor=actor)


async def _valid_records(
    request: Request, actor: str | None
) -> tuple[list[dict[str, Any]], list[catalogue.CreateService]]:
    """The body's records, validated (as JSON again, and as create commands); every bad
    record named in one ``ImportRejected``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (CSV_TYPE, JSON_TYPE):
        raise UnsupportedMediaType("Send text/csv or application/json.")
    records = _records(await request.body(), content_type)
    if len(records) > MAX_RECORDS:
        raise catalogue.ImportRejected(
            f"At most {MAX_RECORDS} services at once.",
            errors=[{"row": 0, "field": "", "message": "too many records"}],
        )
    errors: list[dict[str, Any]] = []
    valid: list[dict[str, Any]] = []
    commands: list[catalogue.CreateService] = []
    for row, record in enumerate(records, start=1):
        try:
            body = ServiceCreate.model_validate(record)
        except ValidationError as exc:
            errors += [
                {"row": row, "field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            continue
        data = body.model_dump()
        core = {k: data.pop(k) for k in CORE_COLUMNS}
        commands.append(catalogue.CreateService(**core, details=data, actor=actor))
        valid.append(body.model_dump(mode="json", exclude_unset=True))
    if errors:
        raise catalogue.ImportRejected(
            f"{len({e['row'] for e in errors})} bad record(s).", errors=errors
        )
    return valid, commands


@router.post(
    "/import",
    status_code=201,
    response_model=list[ServicePublic],
    summary="Import services (CSV or JSON): all or nothing, in this request",
    description=(
        "Synchronous: the answer is the entries created, after one transaction. For a "
        "large file, and to show progress, start an import job instead "
        "(`POST /api/v1/services/import-jobs`), which checks and imports the same way."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": _csv_or_json("ServiceCreate"),
        }
    },
    responses=problem_responses(
        (415, "Neither text/csv nor application/json"),
        (422, "Bad records: each named by row and field; nothing was imported"),
    ),
)
async def import_services(
    request: Request, uow: UowDep, entries: CatalogueInUow, staff: StaffPrincipal
) -> list[ServicePublic]:
    _, commands = await _valid_records(request, staff.subject)
    services = await catalogue.import_services(uow=uow, entries=entries, commands=commands)
    return [ServicePublic.model_validate(s) for s in services]


@router.post(
    "/import-jobs",
    status_code=202,
    response_model=ImportJobPublic,
    summary="Start an import job (CSV or JSON): all or nothing, in the background",
    description=(
        "The file is checked now, as by `POST /api/v1/services/import` (every bad record "
        "named, 422, nothing queued); the job then runs in the background. Follow "
        "`Location` (`GET /api/v1/services/import-jobs/{job_id}`): `status` queued, running, "
        "succeeded or failed, `rows_done` of `rows_total`, the entries created or why it "
        "failed. The catalogue changes all at once when it succeeds, or not at all."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": _csv_or_json("ServiceCreate"),
        }
    },
    responses={
        202: {"headers": header("Location", "Where the job's progress is read.")},
        **problem_responses(
            (415, "Neither text/csv nor application/json"),
            (422, "Bad records: each named by row and field; nothing was queued"),
        ),
    },
)
async def start_import_job(
    request: Request,
    response: Response,
    uow: UowDep,
    entries: CatalogueInUow,
    jobs: ImportJobsInUow,
    staff: StaffPrincipal,
) -> ImportJobPublic:
    records, commands = await _valid_records(request, staff.subject)
    job = await imports.start_import(
        uow=uow,
        entries=entries,
        jobs=jobs,
        records=records,
        commands=commands,
        actor=staff.subject,
    )
    response.headers["Location"] = f"/api/v1/services/import-jobs/{job.id}"
    return ImportJobPublic.model_validate(job)


@router.get(
    "/import-jobs/{job_id}",
    response_model=ImportJobPublic,
    summary="An import job's progress and outcome",
    responses=problem_responses((404, "No such import job")),
)
async def read_import_job(
    job_id: uuid.UUID, response: Response, jobs: ImportJobReads, staff: StaffPrincipal
) -> ImportJobPublic:
    response.headers["Cache-Control"] = "no-store"
    return ImportJobPublic.model_validate(await imports.find_job(jobs=jobs, job_id=job_id))


class UnsupportedMediaType(DomainError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


@router.get(
    "/export",
    summary="Export every entry (staff), CSV or JSON",
    responses={200: {"content": _csv_or_json("ServicePublic")}},
)
async def export_services(
    entries: CatalogueReads,
    staff: StaffPrincipal,
    format: str = Query("json", pattern="^(csv|json)$"),
) -> Response:
    rows = [
        ServicePublic.model_validate(s).model_dump(mode="json")
        for s in await catalogue.all_services(entries=entries)
    ]
    if format == "json":
        return Response(json.dumps(rows), media_type=JSON_TYPE)
    out = io.StringIO()
    writer = csvsafe.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        cells = {**row, **{k: (row.get("channels") or {}).get(k) for k in CHANNELS}}
        for key in LISTS:
            cells[key] = ";".join(str(v) for v in row.get(key) or [])
        cells["attributes"] = json.dumps(row.get("attributes") or [])
        writer.writerow(cells)
    return Response(
        out.getvalue(),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": 'attachment; filename="services.csv"'},
    )
