"""Open Referral UK / HSDS 3.0 read API: ``/hsds`` (anonymous, published services only).

Lists answer Open Referral's page wrapper (``total_items``, ``total_pages``,
``page_number``, ``size``, ``first_page``, ``last_page``, ``empty``, ``contents``) with a weak
``ETag`` and ``Cache-Control: public, max-age=60``; ``If-None-Match`` with that ETag answers
304. Records are built in ``application/hsds.py``. An unknown id is a 404 problem; bad paging
parameters a 422 problem; a query parameter a route does not implement, a bad postcode or day,
or ``proximity`` without ``postcode``, a 400 problem (nothing is silently ignored). Every answer
carries ``Access-Control-Allow-Origin: *`` (:class:`PublicCors`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citizen_services.api.conditional import conditional_responses, etag_matches
from citizen_services.api.deps import CatalogueReads
from citizen_services.api.headers import header
from citizen_services.application import hsds
from citizen_services.domain import geo
from servicekit.errors import DomainError
from servicekit.problems import problem_responses

PREFIX = "/hsds"
ORUK_PROFILE = "https://openreferraluk.org"
#: A host (and port) fit to put in a URL.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
CACHE_CONTROL = "public, max-age=60"
LIST_RESPONSES = conditional_responses(
    header("ETag", "A hash of the body, for conditional requests.")
)
ONE_RESPONSES = problem_responses((404, "No published record with this id"))

Page = Annotated[int, Query(ge=1, le=100_000, description="Page number, from 1")]
PerPage = Annotated[int, Query(ge=1, le=200, description="Records per page (at most 200)")]
Text = Annotated[str | None, Query(max_length=200, description="Full text search")]
#: A record's id: a uuid in the documentation (so clients and fuzzers know its shape); any
#: other string is simply not found (404), as HSDS ids are opaque strings.
RecordId = Annotated[str, Path(max_length=100, json_schema_extra={"format": "uuid"})]
TermId = Annotated[
    str | None, Query(max_length=100, description="Only services with this taxonomy term")
]


class PublicCors:
    """``/hsds`` is public, read-only and anonymous: any web page may read it
    (``Access-Control-Allow-Origin: *``, as Open Referral UK's compliance rules require), on
    every answer (problems too), and a pre-flight ``OPTIONS`` is answered here. No
    credentials are ever allowed. The gateway does the same for its ``/hsds`` route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if (
            scope["method"] == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        ):
            asked = headers.get("access-control-request-headers", "")
            allowed = asked.encode() if _HEADER_NAMES.fullmatch(asked) else b"If-None-Match"
            answer = [*PREFLIGHT, (b"access-control-allow-headers", allowed)]
            await send({"type": "http.response.start", "status": 204, "headers": answer})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in CORS if k not in present]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)


#: What a pre-flight may ask for (header names, comma-separated): echoed, as nothing a
#: caller sends to /hsds carries credentials.
_HEADER_NAMES = re.compile(r"[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+){0,20}")
CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"ETag, X-Request-ID"),
]
PREFLIGHT = [
    *CORS,
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-max-age", b"600"),
    (b"content-length", b"0"),
]


class UnsupportedParameter(DomainError):
    status, code, title = 400, "hsds-unsupported-parameter", "Unsupported query parameter"


class BadFilter(DomainError):
    status, code, title = 400, "hsds-bad-filter", "Bad filter"


def _declared(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


async def _known_parameters(request: Request) -> None:
    """A filter this API does not implement is refused (400), never silently ignored (the
    full list would come back as if it matched). Each route's own query parameters are
    the ones it knows."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _declared(dependant)
    unknown = sorted({name for name in request.query_params if name not in known})
    if not unknown:
        return
    raise UnsupportedParameter(
        f"Unsupported query parameter(s) on {request.url.path}: "
        + ", ".join(name[:40] for name in unknown[:10])
        + f". Supported: {', '.join(sorted(known))}."
    )


router = APIRouter(
    prefix=PREFIX,
    tags=["hsds"],
    dependencies=[Depends(_known_parameters)],
    responses=problem_responses((400, "A query parameter this route does not implement")),
)


def _text(text: str | None, search: str | None) -> str | None:
    # ORUK's parameter is ``search``; ``text`` is accepted as well.
    return text or search


Flag = Annotated[bool, Query()]
OptionalId = Annotated[str | None, Query(max_length=100)]
Postcode = Annotated[
    str | None,
    Query(
        max_length=10,
        description="A UK postcode or district (MK9 3EP, MK9): the council's services cover "
        "Milton Keynes; with `proximity`, only services at a venue within that many metres "
        "of the postcode district's centre.",
    ),
]
Proximity = Annotated[
    float | None, Query(gt=0, le=100_000, description="Metres from `postcode` (needs it)")
]
Day = Annotated[
    str | None,
    Query(
        max_length=9,
        description="A day the service opens (MO..SU, or Monday..Sunday), from its opening hours",
    ),
]
Clock = Annotated[
    time | None,
    Query(description="HH:MM; `start_time`: opens at or after, `end_time`: closes at or before"),
]
Age = Annotated[
    float | None,
    Query(
        ge=0,
        le=150,
        description="Years (Open Referral UK): `minimum_age`: services whose minimum age is at "
        "least this; `maximum_age`: whose maximum age is at most this (ages as the "
        "eligibility states them)",
    ),
]
# A string parsed here, not a ``datetime`` parameter: pydantic would also take a number (seconds
# since 1970), which the published schema (``format: date-time``) does not allow.
ModifiedAfter = Annotated[
    str | None,
    Query(
        description="Only records modified on or after this time (ISO 8601 date-time)",
        json_schema_extra={"format": "date-time"},
    ),
]


def _modified_after(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadFilter("modified_after is not an ISO 8601 date-time.") from None


def _day(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().upper()
    for code, name in zip(hsds.DAYS, DAY_NAMES, strict=True):
        if text in (code, name.upper()):
            return code
    raise BadFilter(f"day must be one of {', '.join(hsds.DAYS)} (or a day's name).")


DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _paging(page: Page = 1, per_page: PerPage = 50) -> hsds.Paging:
    return hsds.Paging(page=page, per_page=per_page)


PagingDep = Annotated[hsds.Paging, Depends(_paging)]


def _service_filters(
    paging: PagingDep,
    text: Text = None,
    search: Text = None,
    taxonomy_term_id: TermId = None,
    taxonomy_id: OptionalId = None,
    organization_id: OptionalId = None,
    modified_after: ModifiedAfter = None,
    postcode: Postcode = None,
    proximity: Proximity = None,
    day: Day = None,
    start_time: Clock = None,
    end_time: Clock = None,
    minimum_age: Age = None,
    maximum_age: Age = None,
) -> hsds.ListServices:
    """The filters of the two lists of services (and services at locations)."""
    if postcode is not None and geo.outward_code(postcode) is None:
        raise BadFilter("postcode is not a UK postcode or postcode district.")
    if proximity is not None and postcode is None:
        raise BadFilter("proximity needs a postcode to measure from.")
    return hsds.ListServices(
        text=_text(text, search),
        taxonomy_term_id=taxonomy_term_id,
        taxonomy_id=taxonomy_id,
        organization_id=organization_id,
        modified_after=_modified_after(modified_after),
        postcode=postcode,
        proximity=proximity,
        day=_day(day),
        # opening times are local (UK) clock times: an offset, if given, is not compared
        start_time=start_time.replace(tzinfo=None) if start_time else None,
        end_time=end_time.replace(tzinfo=None) if end_time else None,
        minimum_age=minimum_age,
        maximum_age=maximum_age,
        paging=paging,
    )


ServiceFilters = Annotated[hsds.ListServices, Depends(_service_filters)]


@dataclass(frozen=True)
class _NameSearch:
    text: str | None
    paging: hsds.Paging


def _name_search(paging: PagingDep, text: Text = None, search: Text = None) -> _NameSearch:
    """The filter and page of the lists searched by name alone (organizations, locations)."""
    return _NameSearch(text=_text(text, search), paging=paging)


NameSearch = Annotated[_NameSearch, Depends(_name_search)]


def _list_response(request: Request, body: dict[str, Any]) -> Response:
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    etag = 'W/"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(raw, media_type="application/json", headers=headers)


def _public_base(request: Request) -> str:
    """The public origin the client called: the gateway's, when it forwarded the request
    (``X-Forwarded-Proto``/``-Host``, which the gateway sets and never takes from clients)."""
    host = request.headers.get("x-forwarded-host", "")
    proto = request.headers.get("x-forwarded-proto", "")
    if _HOST.fullmatch(host) and proto in ("http", "https"):
        return f"{proto}://{host}"
    return str(request.base_url).rstrip("/")


@router.get("", summary="About this API (HSDS version and profile)")
async def about(request: Request) -> dict[str, Any]:
    return {
        "version": "3.0",
        "profile": ORUK_PROFILE,
        "openapi_url": _public_base(request) + "/openapi.json",
    }


@router.get("/services", summary="Published services, a page at a time", responses=LIST_RESPONSES)
async def list_services(
    request: Request,
    entries: CatalogueReads,
    query: ServiceFilters,
    full: Flag = False,
    minimal: Annotated[
        bool, Query(description="Only each service's id, name, status and last_modified")
    ] = False,
) -> Response:
    return _list_response(
        request,
        await hsds.list_services(entries=entries, full=full, minimal=minimal, query=query),
    )


@router.get(
    "/services/{service_id}", summary="A fully nested published service", responses=ONE_RESPONSES
)
async def read_service(service_id: RecordId, entries: CatalogueReads) -> dict[str, Any]:
    return await hsds.get_service(entries=entries, service_id=service_id)


@router.get(
    "/organizations",
    summary="Milton Keynes City Council and its departments",
    responses=LIST_RESPONSES,
)
async def list_organizations(
    request: Request,
    entries: CatalogueReads,
    query: NameSearch,
    full: Annotated[bool, Query(description="With their services' one-to-one fields")] = False,
    full_service: Annotated[bool, Query(description="With their services fully nested")] = False,
) -> Response:
    body = await hsds.list_organizations(
        entries=entries,
        text=query.text,
        paging=query.paging,
        full=full,
        full_service=full_service,
    )
    return _list_response(request, body)


@router.get(
    "/organizations/{organization_id}",
    summary="An organization and the services it provides",
    responses=ONE_RESPONSES,
)
async def read_organization(
    organization_id: RecordId,
    entries: CatalogueReads,
    full_service: Annotated[bool, Query(description="Its services fully nested")] = False,
) -> dict[str, Any]:
    return await hsds.get_organization(
        entries=entries, organization=organization_id, full_service=full_service
    )


@router.get(
    "/locations", summary="Venues where services are offered in person", responses=LIST_RESPONSES
)
async def list_locations(request: Request, entries: CatalogueReads, query: NameSearch) -> Response:
    body = await hsds.list_locations(entries=entries, text=query.text, paging=query.paging)
    return _list_response(request, body)


@router.get("/locations/{location_id}", summary="A location", responses=ONE_RESPONSES)
async def read_location(location_id: RecordId, entries: CatalogueReads) -> dict[str, Any]:
    return await hsds.get_location(entries=entries, location=location_id)


@router.get(
    "/service_at_locations", summary="Services offered at a venue", responses=LIST_RESPONSES
)
async def list_service_at_locations(
    request: Request, entries: CatalogueReads, query: ServiceFilters, full: Flag = False
) -> Response:
    return _list_response(
        request, await hsds.list_services_at_locations(entries=entries, query=query, full=full)
    )


@router.get(
    "/service_at_locations/{sal_id}", summary="A service at a location", responses=ONE_RESPONSES
)
async def read_service_at_location(sal_id: RecordId, entries: CatalogueReads) -> dict[str, Any]:
    return await hsds.get_service_at_location(entries=entries, sal=sal_id)


@router.get(
    "/taxonomies", summary="The taxonomies services are classified by", responses=LIST_RESPONSES
)
async def list_taxonomies(request: Request, query: NameSearch) -> Response:
    body = await hsds.list_taxonomies(text=query.text, paging=query.paging)
    return _list_response(request, body)


@router.get("/taxonomies/{taxonomy_id}", summary="A taxonomy", responses=ONE_RESPONSES)
async def read_taxonomy(taxonomy_id: RecordId) -> dict[str, Any]:
    return await hsds.get_taxonomy(taxonomy=taxonomy_id)


@router.get(
    "/taxonomy_terms", summary="LGSL codes and service groups in use", responses=LIST_RESPONSES
)
async def list_taxonomy_terms(
    request: Request,
    entries: CatalogueReads,
    query: NameSearch,
    taxonomy_id: OptionalId = None,
    top_only: Annotated[bool, Query(description="Only terms without a parent")] = False,
    parent_id: Annotated[
        str | None, Query(max_length=100, description="Only the children of this term")
    ] = None,
) -> Response:
    body = await hsds.list_taxonomy_terms(
        entries=entries,
        text=query.text,
        taxonomy_id=taxonomy_id,
        paging=query.paging,
        top_only=top_only,
        parent_id=parent_id,
    )
    return _list_response(request, body)


@router.get("/taxonomy_terms/{term_id}", summary="A taxonomy term", responses=ONE_RESPONSES)
async def read_taxonomy_term(term_id: RecordId, entries: CatalogueReads) -> dict[str, Any]:
    return await hsds.get_taxonomy_term(entries=entries, term=term_id)
