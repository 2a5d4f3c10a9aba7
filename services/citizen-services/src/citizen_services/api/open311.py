"""Open311 GeoReport v2 at ``/open311/v2``, XML or JSON by the path's suffix.

What FixMyStreet and other Open311 clients call: ``discovery``, ``services``,
``services/{code}`` (the attribute definitions), ``POST requests`` (form-encoded, or
multipart/form-data with photos, served at ``media/{id}.{ext}``), ``GET requests`` (filters
``service_request_id``, ``service_code``, ``start_date``, ``end_date``, ``status``),
``requests/{id}``, ``tokens/{id}`` and mySociety's ``servicerequestupdates`` (GET, and POST
for a citizen's update). Attributes a service does not define (FixMyStreet always sends
``uprn``, ``fixmystreet_id``...) are kept for staff, never shown here.

Reads are public, as the spec has them, so they show only what is meant to be public:
requests that arrived through Open311 (the spec expects them readable) or that the citizen
chose to make public; of their staff notes, only those marked public. A citizen's private
report is "no such service request" (404) and absent from every list and from
``servicerequestupdates`` (``application/open311.py`` applies the rule in its queries).
A POST needs a partner's API key with the
``open311`` scope, or a member of staff: the gateway checks the ``api_key`` and forwards the
identity assertion; without one this answers 403. A submission is the same command as
``POST /api/v1/service-requests`` (same checks, same ServiceRequestSubmitted through the
outbox); the reporter's email, names and phone are kept as consented contact data (the
partner collected them for this report) and never returned, logged or put in an error.

Every error this router answers, validation included, is in Open311's shape
(``<errors><error>`` or ``[{"code", "description"}]``) with 400, 403 or 404, naming the
field and never echoing its value. (The gateway's own 413/429/503/504 stay problem+json.)
The POSTs are left out of the OpenAPI document: they answer an anonymous caller 403 (the
spec's "api_key missing or invalid"), which the platform's role convention (401 for
anonymous callers) cannot express; docs/citizen-services.md describes it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from citizen_services.api.deps import CatalogueInUow, CatalogueReads, RequestReads, RequestsInUow
from citizen_services.api.open311_format import (
    Format,
    format_of_path,
    iso,
    render,
    render_errors,
    responses,
)
from citizen_services.api.schemas import ONE_LINE, TEXT, Contact, RequestCreate
from citizen_services.application import open311 as queries
from citizen_services.application import requests as commands
from citizen_services.domain.media import BY_EXTENSION, MAX_MEDIA_BYTES, MAX_MEDIA_FILES
from citizen_services.domain.requests import MAX_DESCRIPTION, open311_status
from citizen_services.persistence.tables import CatalogueService, ServiceRequest
from servicekit.deps import UowDep
from servicekit.errors import DomainError
from servicekit.identity import CurrentPrincipal, Principal, Role

log = logging.getLogger(__name__)

SCOPE = "open311"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-26T00:00:00+00:00"
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
#: A multipart POST: its photos and the form (the gateway allows 10 MiB in all).
MAX_UPLOAD_BYTES = MAX_MEDIA_FILES * MAX_MEDIA_BYTES + MAX_FORM_BYTES
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]*)\](\[\])?$")
#: A service code as the catalogue has them (``api/schemas.py``): anything else names no
#: service, and is not sent to the database (PostgreSQL refuses a NUL in a string).
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
_MEDIA_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$")
_CONTACT = ("email", "first_name", "last_name", "phone")
_ONE_LINE = re.compile(ONE_LINE)
_TEXT = re.compile(TEXT)


class Open311Error(Exception):
    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__(status)
        self.status = status
        self.descriptions = list(descriptions)


def _format_of(request: Request) -> Format:
    value = request.path_params.get("format")
    return Format.JSON if value == Format.JSON.value else format_of_path(request.url.path)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """The Open311 name of a field the JSON API's model (or the domain) calls ``loc``."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    if not parts:
        return "request"
    if parts[0] == "attributes" and len(parts) > 1:
        return f"attribute[{parts[1]}]"
    if parts[0] == "contact" and len(parts) > 1:
        return parts[1]
    return {"address": "address_string"}.get(parts[0], parts[0])


def _dotted(field: str) -> str:
    return _field(tuple(field.split(".", 1)))


def _domain_errors(exc: DomainError) -> list[str]:
    errors = exc.extensions.get("errors") or []
    named = [
        f"{_dotted(str(e.get('field', '')))}: {e.get('message', 'invalid')}"
        for e in errors
        if isinstance(e, dict)
    ]
    return named or [exc.detail]


def _status_of(status: int) -> int:
    return status if status in (403, 404) else 403 if status == 401 else 400


class Open311Route(APIRoute):
    """Answers every error of its endpoint in Open311's shape and format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Open311Error as exc:
                return render_errors(exc.status, exc.descriptions, _format_of(request))
            except RequestValidationError as exc:
                errors = exc.errors()
                if any(tuple(e.get("loc", ()))[:2] == ("path", "format") for e in errors):
                    return render_errors(404, ["format: use .xml or .json"], Format.JSON)
                return render_errors(
                    400,
                    [f"{_field(e.get('loc', ()))}: {e.get('msg')}" for e in errors],
                    _format_of(request),
                )
            except DomainError as exc:
                return render_errors(
                    _status_of(exc.status), _domain_errors(exc), _format_of(request)
                )
            except StarletteHTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else "Error"
                return render_errors(_status_of(exc.status_code), [detail], _format_of(request))

        return route


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)

FormatPath = Annotated[Format, Path(alias="format", description="Response format: xml or json")]
NOT_FOUND = (404, "Not found, or a format other than xml/json (JSON then)")
BAD = (400, "Invalid parameter; the description names it")
REFUSED = (401, "Credentials were presented in a header and refused")
FORBIDDEN = (403, "The api_key is not valid (the gateway checks it)")
_STRING_OR_NULL = {"type": ["string", "null"]}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
#: What every GET answers besides its 200.
READ_ERRORS = (BAD, NOT_FOUND, REFUSED, FORBIDDEN)


def _list_of(properties: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a list of objects with these ``properties`` (in XML, one element
    per object)."""
    return {"type": "array", "items": {"type": "object", "properties": properties}}


# -- discovery and services -------------------------------------------------------------


def _origin(request: Request) -> str:
    """The public origin: the gateway's when it forwarded the request."""
    host = request.headers.get("x-forwarded-host", "")
    proto = request.headers.get("x-forwarded-proto", "")
    if _HOST.match(host) and proto in ("http", "https"):
        return f"{proto}://{host}"
    return str(request.base_url).rstrip("/")


def _endpoint_url(request: Request) -> str:
    """The public URL of this endpoint."""
    return _origin(request) + "/open311/v2"


def _media_url(request: Request, value: str | None) -> str | None:
    """A request's or update's ``media_url``: a photo uploaded here (stored as a path) at
    the origin the client called; a client's own URL as it sent it."""
    return _origin(request) + value if value and value.startswith("/") else value


DISCOVERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "changeset": {"type": "string"},
        "contact": {"type": "string"},
        "key_service": {"type": "string"},
        "endpoints": _list_of(
            {
                "specification": {"type": "string"},
                "url": {"type": "string"},
                "changeset": {"type": "string"},
                "type": {"type": "string"},
                "formats": {"type": "array", "items": {"type": "string"}},
            }
        ),
    },
}


@router.get(
    "/discovery.{format}",
    summary="Open311 discovery: where and what this endpoint is",
    response_class=Response,
    responses=responses(DISCOVERY_SCHEMA, *READ_ERRORS),
)
async def discovery(request: Request, fmt: FormatPath) -> Response:
    document = {
        "changeset": CHANGESET,
        "contact": "Milton Keynes City Council digital services: "
        "https://www.milton-keynes.gov.uk/contact-us",
        "key_service": "API keys for Open311 clients are issued by the council's digital "
        "team (scope 'open311').",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": _endpoint_url(request),
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return render(document, fmt, root="discovery")


SERVICES_SCHEMA: dict[str, Any] = _list_of(
    {
        "service_code": {"type": "string"},
        "service_name": {"type": "string"},
        "description": {"type": "string"},
        "metadata": {"type": "boolean"},
        "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
        "keywords": {
            "type": "string",
            "description": "Comma-separated without spaces, as FixMyStreet splits them",
        },
        "group": {"type": "string", "description": "The first of groups"},
        "groups": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Every group (left out when none); in XML <groups><group>",
        },
    }
)


def _keywords(keywords: list[str]) -> str:
    """FixMyStreet splits keywords on ',' alone (``private``, ``inactive``, ``staff``,
    ``waste_only`` mean something to it): no spaces around them, none inside one."""
    cleaned = (k.replace(",", " ").strip() for k in keywords)
    return ",".join(dict.fromkeys(k for k in cleaned if k))


def _service(service: CatalogueService) -> dict[str, Any]:
    groups = [g for g in service.groups or [] if g]
    out: dict[str, Any] = {
        "service_code": service.service_code,
        "service_name": service.name,
        "description": service.description,
        "metadata": bool(service.attributes),
        "type": "realtime",
        "keywords": _keywords(service.keywords or []),
        "group": (groups or [""])[0],
    }
    if groups:
        out["groups"] = groups
    return out


@router.get(
    "/services.{format}",
    response_class=Response,
    summary="The services a problem can be reported against",
    responses=responses(SERVICES_SCHEMA, *READ_ERRORS),
)
async def list_services(fmt: FormatPath, entries: CatalogueReads) -> Response:
    services = await queries.reportable_services(entries=entries)
    return render([_service(s) for s in services], fmt, root="services", item="service")


DEFINITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "service_code": {"type": "string"},
        "attributes": _list_of(
            {
                "variable": {"type": "boolean"},
                "code": {"type": "string"},
                "datatype": {
                    "type": "string",
                    "enum": [
                        "string",
                        "number",
                        "datetime",
                        "text",
                        "singlevaluelist",
                        "multivaluelist",
                    ],
                },
                "required": {"type": "boolean"},
                "datatype_description": _STRING_OR_NULL,
                "order": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "The attribute's position, from 1",
                },
                "description": {"type": "string"},
                "values": _list_of({"key": {"type": "string"}, "name": {"type": "string"}}),
                "automated": {
                    "type": "string",
                    "enum": ["server_set", "hidden_field"],
                    "description": "mySociety's extension; left out for a citizen's question",
                },
                "protected": {
                    "type": "boolean",
                    "description": "mySociety's extension; left out unless true",
                },
            }
        ),
    },
}


def _attribute(definition: dict[str, Any], position: int) -> dict[str, Any]:
    """An attribute definition; ``order`` is its position (from 1: the spec's "positive
    integer"), the stored orders (0 allowed) deciding the sequence."""
    out = {
        "variable": bool(definition.get("variable", True)),
        "code": definition["code"],
        "datatype": definition.get("datatype", "string"),
        "required": bool(definition.get("required", False)),
        "datatype_description": definition.get("datatype_description"),
        "order": position,
        "description": definition.get("description", ""),
        "values": [{"key": v["key"], "name": v["name"]} for v in definition.get("values") or []],
    }
    if definition.get("automated") in ("server_set", "hidden_field"):
        out["automated"] = definition["automated"]
    if definition.get("protected"):
        out["protected"] = True
    return out


@router.get(
    "/services/{service_code}.{format}",
    response_class=Response,
    summary="A service's definition: the attributes a report carries",
    responses=responses(DEFINITION_SCHEMA, *READ_ERRORS),
)
async def service_definition(
    service_code: Annotated[str, Path(max_length=200)], fmt: FormatPath, entries: CatalogueReads
) -> Response:
    service = (
        await queries.reportable_service(entries=entries, code=service_code)
        if _CODE.match(service_code)
        else None
    )
    if service is None:
        raise Open311Error(404, "service_code: no service takes reports with this code")
    attributes = sorted(
        service.attributes, key=lambda d: (int(d.get("order") or 0), str(d.get("code")))
    )
    return render(
        {
            "service_code": service.service_code,
            "attributes": [_attribute(a, i) for i, a in enumerate(attributes, start=1)],
        },
        fmt,
        root="service_definition",
    )


# -- requests -----------------------------------------------------------------------------

REQUESTS_SCHEMA: dict[str, Any] = _list_of(
    {
        "service_request_id": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "external_status_code": {"type": "string"},
        "status_notes": _STRING_OR_NULL,
        "service_name": _STRING_OR_NULL,
        "service_code": {"type": "string"},
        "description": {"type": "string"},
        "agency_responsible": {"type": "string"},
        "service_notice": _STRING_OR_NULL,
        "requested_datetime": {"type": "string"},
        "updated_datetime": {"type": "string"},
        "expected_datetime": _STRING_OR_NULL,
        "address": _STRING_OR_NULL,
        "address_id": _STRING_OR_NULL,
        "zipcode": _STRING_OR_NULL,
        "lat": _NUMBER_OR_NULL,
        "long": _NUMBER_OR_NULL,
        "media_url": _STRING_OR_NULL,
    }
)
AGENCY = "Milton Keynes City Council"


def _request(
    row: ServiceRequest, names: dict[str, str], notes: dict[uuid.UUID, str], origin: Request
) -> dict[str, Any]:
    """A request as Open311 shows it. Contact details are never among the fields."""
    return {
        "service_request_id": str(row.id),
        "status": open311_status(row.status),
        "external_status_code": row.status,
        "status_notes": notes.get(row.id),
        "service_name": names.get(row.service_code),
        "service_code": row.service_code,
        "description": row.description,
        "agency_responsible": AGENCY,
        "service_notice": None,
        "requested_datetime": iso(row.created_at),
        "updated_datetime": iso(row.updated_at),
        "expected_datetime": None,
        "address": row.address,
        "address_id": None,
        "zipcode": None,
        "lat": row.lat,
        "long": row.long,
        "media_url": _media_url(origin, row.media_url),
    }


async def _render_requests(
    request: Request,
    rows: list[ServiceRequest],
    fmt: Format,
    entries: CatalogueReads,
    service_requests: RequestReads,
) -> Response:
    names = await queries.service_names(entries=entries, codes={r.service_code for r in rows})
    notes = await queries.latest_notes(
        service_requests=service_requests, request_ids=[r.id for r in rows]
    )
    return render(
        [_request(r, names, notes, request) for r in rows],
        fmt,
        root="service_requests",
        item="request",
    )


def _date(name: str, value: str | None) -> datetime | None:
    """A W3C/ISO 8601 date-time (``2010-01-01T00:00:00Z``, an offset, or a date alone),
    in UTC; a '+' the client forgot to encode arrives as a space and is put back. One
    whose UTC time falls outside years 1-9999 (``9999-12-31T23:59:59-01:00``) is refused
    here rather than failing when the database is asked."""
    if value is None or value == "":
        return None
    text = value.strip()
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise Open311Error(
            400, f"{name}: must be a W3C date-time such as 2026-01-01T00:00:00Z"
        ) from None


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))


DateQuery = Annotated[
    str | None, Query(max_length=64, description="W3C date-time, e.g. 2026-01-01T00:00:00Z")
]


@router.get(
    "/requests.{format}",
    response_class=Response,
    summary="Service requests, newest first (by default the last 90 days; at most 1,000)",
    responses=responses(REQUESTS_SCHEMA, *READ_ERRORS),
)
async def list_requests(
    request: Request,
    fmt: FormatPath,
    entries: CatalogueReads,
    service_requests: RequestReads,
    service_request_id: Annotated[
        str | None,
        Query(max_length=8000, description="Ids, comma-separated; overrides the other filters"),
    ] = None,
    service_code: Annotated[
        str | None, Query(max_length=2000, description="Service codes, comma-separated")
    ] = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
    status: Annotated[
        str | None,
        Query(
            pattern=r"^((open|closed)(,(open|closed))*)?$",
            description="open, closed, or both comma-separated; empty is the same as absent",
        ),
    ] = None,
) -> Response:
    ids = _list(service_request_id)
    if len(ids) > queries.MAX_IDS:
        raise Open311Error(400, f"service_request_id: at most {queries.MAX_IDS} ids")
    codes = _list(service_code)
    if not all(_CODE.match(code) for code in codes):
        raise Open311Error(
            400, "service_code: codes are letters, digits, '.', '_' and '-', comma-separated"
        )
    start, end = _date("start_date", start_date), _date("end_date", end_date)
    if start and end and start > end:
        raise Open311Error(400, "end_date: must not be before start_date")
    rows = await queries.find_requests(
        service_requests=service_requests,
        query=queries.RequestQuery(
            ids=ids, service_codes=codes, start=start, end=end, statuses=_list(status)
        ),
    )
    return await _render_requests(request, rows, fmt, entries, service_requests)


async def _one(service_requests: RequestReads, request_id: str) -> list[ServiceRequest]:
    row = await queries.public_request(service_requests=service_requests, request_id=request_id)
    if row is None:
        raise Open311Error(404, "service_request_id: no such service request")
    return [row]


@router.get(
    "/requests/{service_request_id}.{format}",
    response_class=Response,
    summary="One service request (a list of one, as the spec has it)",
    responses=responses(REQUESTS_SCHEMA, *READ_ERRORS),
)
async def read_request(
    request: Request,
    service_request_id: Annotated[str, Path(max_length=100)],
    fmt: FormatPath,
    entries: CatalogueReads,
    service_requests: RequestReads,
) -> Response:
    return await _render_requests(
        request, await _one(service_requests, service_request_id), fmt, entries, service_requests
    )


TOKENS_SCHEMA: dict[str, Any] = _list_of(
    {"service_request_id": {"type": "string"}, "token": {"type": "string"}}
)


@router.get(
    "/tokens/{token_id}.{format}",
    response_class=Response,
    summary="The request a token stands for (requests are created at once: a "
    "token is the request's id)",
    responses=responses(TOKENS_SCHEMA, *READ_ERRORS),
)
async def read_token(
    token_id: Annotated[str, Path(max_length=100)], fmt: FormatPath, service_requests: RequestReads
) -> Response:
    [row] = await _one(service_requests, token_id)
    return render(
        [{"service_request_id": str(row.id), "token": token_id}],
        fmt,
        root="service_requests",
        item="request",
    )


UPDATES_SCHEMA: dict[str, Any] = _list_of(
    {
        "update_id": {"type": "string"},
        "service_request_id": {"type": "string"},
        "status": {"type": "string"},
        "updated_datetime": {"type": "string"},
        "description": {"type": "string", "description": "The public staff note, or empty"},
        "media_url": {"type": "string"},
        "external_status_code": {"type": "string"},
    }
)


@router.get(
    "/servicerequestupdates.{format}",
    response_class=Response,
    summary="Status changes and notes (mySociety's extension, as FixMyStreet "
    "fetches them), oldest first",
    responses=responses(UPDATES_SCHEMA, *READ_ERRORS),
)
async def list_updates(
    request: Request,
    fmt: FormatPath,
    service_requests: RequestReads,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
) -> Response:
    start, end = _date("start_date", start_date), _date("end_date", end_date)
    if start and end and start > end:
        raise Open311Error(400, "end_date: must not be before start_date")
    updates = await queries.find_updates(service_requests=service_requests, start=start, end=end)
    document = [
        {
            "update_id": str(u.id),
            "service_request_id": str(u.request_id),
            "status": u.status,
            "updated_datetime": iso(u.occurred_at),
            "description": u.note or "",
            "media_url": _media_url(request, u.media_url) or "",
            "external_status_code": u.status,
        }
        for u in updates
    ]
    return render(document, fmt, root="service_request_updates", item="request_update")


# -- submitting ---------------------------------------------------------------------------


def may_submit(principal: Principal) -> bool:
    """Staff, or a partner whose API key carries the ``open311`` scope."""
    return principal.has_role(Role.STAFF, Role.ADMIN) or (
        principal.has_role(Role.PARTNER) and principal.has_scope(SCOPE)
    )


async def _read(request: Request, limit: int, what: str) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Open311Error(400, f"request: {what} is over {limit} bytes")
    return bytes(body)


async def _form(request: Request) -> tuple[list[tuple[str, str]], list[commands.Photo]]:
    """The form's fields, and the files uploaded with it: form-encoded, or
    multipart/form-data (FixMyStreet's way of sending photos)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _multipart(request)
    if content_type != "application/x-www-form-urlencoded":
        raise Open311Error(
            400,
            "request: send the fields form-encoded (application/x-www-form-urlencoded) "
            "or as multipart/form-data",
        )
    body = await _read(request, MAX_FORM_BYTES, "the form")
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        ), []
    except UnicodeDecodeError:
        raise Open311Error(400, "request: the form is not UTF-8") from None
    except ValueError:
        raise Open311Error(400, f"request: at most {MAX_FORM_FIELDS} fields") from None


async def _multipart(request: Request) -> tuple[list[tuple[str, str]], list[commands.Photo]]:
    body = await _read(request, MAX_UPLOAD_BYTES, "the upload")

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        request.headers,
        stream(),
        max_files=MAX_MEDIA_FILES,
        max_fields=MAX_FORM_FIELDS,
        max_part_size=MAX_FORM_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise Open311Error(400, f"request: {_multipart_problem(exc.message)}") from None
    fields: list[tuple[str, str]] = []
    photos: list[commands.Photo] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields.append((name, value))
                continue
            data = await value.read()
            if data or value.filename:  # an empty file input sends neither
                photos.append(commands.Photo(field=_safe_name(name), data=data))
    finally:
        await form.close()
    return fields, photos


def _multipart_problem(message: str) -> str:
    if message.startswith("Too many files"):
        return f"at most {MAX_MEDIA_FILES} files"
    if message.startswith("Too many fields"):
        return f"at most {MAX_FORM_FIELDS} fields"
    if message.startswith("Part exceeded"):
        return f"a field other than a file is over {MAX_FORM_BYTES} bytes"
    return "not valid multipart/form-data"


def _safe_name(name: str) -> str:
    """A form field's name as an error may show it (it names the field, never a value)."""
    return name if _CODE.match(name) else "file"


def _number(name: str, value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name}: must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Open311Error(400, f"{name}: must be a number")
    return number


def submission(fields: list[tuple[str, str]]) -> dict[str, Any]:
    """The form's fields as the JSON API's body (``RequestCreate``'s fields); the
    ``attribute[code]`` fields as attributes, repeated ones or ``attribute[code][]`` as a
    list (multivaluelist). Fields Open311 defines that this council does not use
    (``api_key``, ``jurisdiction_id``, ``address_id``, ``device_id``, ``account_id``) are
    ignored."""
    single: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    listed: set[str] = set()
    for name, value in fields:
        matched = _ATTRIBUTE.match(name)
        if matched:
            attributes.setdefault(matched.group(1), []).append(value)
            if matched.group(2):
                listed.add(matched.group(1))
        else:
            single[name] = value
    contact = {k: single[k].strip() for k in _CONTACT if single.get(k, "").strip()}
    body: dict[str, Any] = {
        "service_code": single.get("service_code", ""),
        "description": single.get("description", ""),
        "lat": _number("lat", single.get("lat")),
        "long": _number("long", single.get("long")),
        "address": single.get("address_string", "").strip() or None,
        "attributes": {
            code: values if code in listed or len(values) > 1 else values[0]
            for code, values in attributes.items()
        },
        "contact": contact or None,
        # The partner collected these details from the reporter for this report.
        "contact_consent": bool(contact),
    }
    if not body["service_code"]:
        raise Open311Error(400, "service_code: required")
    return body


#: What a field that failed its pattern must look like (pydantic's message shows the regex).
_PATTERNS = {
    "service_code": "must be letters, digits, '.', '_' and '-'",
    "email": "must be an email address",
    "phone": "must be a phone number: digits, spaces, '+', '(', ')' and '-'",
}


def _message(field: str, error: Any) -> str:
    if error.get("type") != "string_pattern_mismatch":
        return str(error.get("msg", "invalid"))
    return _PATTERNS.get(field, "contains characters that are not allowed (control characters)")


@router.post("/requests.{format}", response_class=Response, include_in_schema=False)
async def submit_request(
    request: Request,
    fmt: FormatPath,
    uow: UowDep,
    entries: CatalogueInUow,
    service_requests: RequestsInUow,
    principal: CurrentPrincipal,
) -> Response:
    if not may_submit(principal):
        raise Open311Error(403, "api_key: missing, or not valid for Open311 submissions")
    fields, photos = await _form(request)
    body = submission(fields)
    media_url = next((v.strip() for k, v in fields if k == "media_url" and v.strip()), None)
    if media_url is not None and (len(media_url) > 2000 or not _MEDIA_URL.match(media_url)):
        raise Open311Error(400, "media_url: must be an http(s) URL of at most 2000 characters")
    try:
        checked = RequestCreate.model_validate(body)
    except ValidationError as exc:
        named = {
            _field(e["loc"]): _message(_field(e["loc"]), e)
            for e in reversed(exc.errors(include_input=False))
        }
        raise Open311Error(400, *[f"{name}: {msg}" for name, msg in named.items()]) from None
    # A report made through Open311 is public, as the spec expects (its contact details not).
    created = await commands.submit_request(
        uow=uow,
        entries=entries,
        service_requests=service_requests,
        command=commands.SubmitRequest(
            **{**checked.model_dump(), "public": True},
            media_url=media_url,
            submitted_by=principal.subject,
            keep_undefined_attributes=True,
            photos=tuple(photos),
        ),
    )
    log.info("open311 request %s submitted for %s", created.id, created.service_code)
    return render(
        [{"service_request_id": str(created.id), "service_notice": None, "account_id": None}],
        fmt,
        root="service_requests",
        item="request",
    )


# -- citizens' updates (mySociety's extension) ---------------------------------------------

#: FixMyStreet's statuses for an update (``_populate_service_request_update_params``).
CLIENT_STATUSES = frozenset(
    {
        "open",
        "closed",
        "fixed",
        "in_progress",
        "action_scheduled",
        "investigating",
        "duplicate",
        "not_councils_responsibility",
        "no_further_action",
        "internal_referral",
        "for_triage",
        "cancelled",
        "reopen",
    }
)


def _one_field(fields: list[tuple[str, str]], name: str) -> str:
    return next((v.strip() for k, v in fields if k == name and v.strip()), "")


def _client_update(
    fields: list[tuple[str, str]], photos: list[commands.Photo], subject: str | None
) -> commands.PostClientUpdate:
    """The fields FixMyStreet's ``post_service_request_update`` sends, checked: each
    problem names its field, never its value."""
    request_id = _one_field(fields, "service_request_id")
    if not request_id:
        raise Open311Error(400, "service_request_id: required")
    try:
        key = uuid.UUID(request_id)
    except ValueError:
        raise Open311Error(404, "service_request_id: no such service request") from None
    status = _one_field(fields, "status").lower().replace(" ", "_")
    if status and status not in CLIENT_STATUSES:
        raise Open311Error(400, f"status: must be one of {', '.join(sorted(CLIENT_STATUSES))}")
    external_id = _one_field(fields, "update_id") or _one_field(fields, "update_id_ext")
    if len(external_id) > 100 or not _ONE_LINE.match(external_id):
        raise Open311Error(400, "update_id: at most 100 characters, on one line")
    description = next((v for k, v in fields if k == "description"), "").strip()
    if len(description) > MAX_DESCRIPTION or not _TEXT.match(description):
        raise Open311Error(
            400, f"description: at most {MAX_DESCRIPTION} characters, no control characters"
        )
    _date("updated_datetime", _one_field(fields, "updated_datetime") or None)
    media_url = _one_field(fields, "media_url") or None
    if media_url is not None and (len(media_url) > 2000 or not _MEDIA_URL.match(media_url)):
        raise Open311Error(400, "media_url: must be an http(s) URL of at most 2000 characters")
    given = {k: _one_field(fields, k) for k in _CONTACT if _one_field(fields, k)}
    if given.get("last_name") == "-":  # FixMyStreet's stand-in for no last name
        del given["last_name"]
    try:
        contact = Contact.model_validate(given).model_dump(exclude_none=True)
    except ValidationError as exc:
        named = {_field(e["loc"]): _message(_field(e["loc"]), e) for e in exc.errors()}
        raise Open311Error(400, *[f"{name}: {msg}" for name, msg in named.items()]) from None
    return commands.PostClientUpdate(
        request_id=key,
        description=description,
        reported_status=status or None,
        external_id=external_id or None,
        media_url=media_url,
        contact=contact or None,
        photos=tuple(photos),
        submitted_by=subject,
    )


@router.post("/servicerequestupdates.{format}", response_class=Response, include_in_schema=False)
async def post_update(
    request: Request,
    fmt: FormatPath,
    uow: UowDep,
    service_requests: RequestsInUow,
    principal: CurrentPrincipal,
) -> Response:
    """A citizen's update as FixMyStreet posts it; answers the update's id, which
    ``GET servicerequestupdates`` lists it under (FixMyStreet skips those it knows)."""
    if not may_submit(principal):
        raise Open311Error(403, "api_key: missing, or not valid for Open311 submissions")
    fields, photos = await _form(request)
    update = await commands.post_client_update(
        uow=uow,
        service_requests=service_requests,
        command=_client_update(fields, photos, principal.subject),
    )
    log.info("open311 update %s posted on request %s", update.id, update.request_id)
    return render(
        [{"update_id": str(update.id)}],
        fmt,
        root="service_request_updates",
        item="request_update",
    )


# -- photos uploaded with reports ---------------------------------------------------------

MEDIA_TYPES = sorted({t.content_type for t in BY_EXTENSION.values()})


@router.get(
    "/media/{media_id}.{extension}",
    response_class=Response,
    summary="A photo uploaded with a public report (its media_url)",
    responses={
        200: {
            "description": "The photo, as uploaded (its type checked by its first bytes)",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES},
        },
        **responses(None, *READ_ERRORS),
    },
)
async def read_media(
    media_id: Annotated[str, Path(max_length=100)],
    extension: Annotated[str, Path(max_length=10)],
    service_requests: RequestReads,
) -> Response:
    media = await queries.public_media(
        service_requests=service_requests, media_id=media_id, extension=extension
    )
    if media is None:
        raise Open311Error(404, "media: no such photo")
    return Response(
        media.data,
        media_type=media.content_type,
        headers={
            "cache-control": "public, max-age=86400",
            "content-disposition": f'inline; filename="{media.id}.{media.extension}"',
            "content-security-policy": "default-src 'none'; sandbox",
            "x-content-type-options": "nosniff",
        },
    )


# -- anything else under /open311/v2 ------------------------------------------------------


@router.api_route(
    "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def not_found(request: Request) -> Response:
    return render_errors(
        404, [f"{request.url.path}: no such Open311 resource"], format_of_path(request.url.path)
    )
