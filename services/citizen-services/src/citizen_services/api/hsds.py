"""Open Referral UK / HSDS 3.0 read API: ``/hsds`` (anonymous, published services only).

Lists answer Open Referral's page wrapper (``total_items``, ``total_pages``,
``page_number``, ``size``, ``first_page``, ``last_page``, ``empty``, ``contents``) with a weak
``ETag`` and ``Cache-Control: public, max-age=60``; ``If-None-Match`` with that ETag answers
304. Records are built in ``application/hsds.py``. An unknown id is a 404 problem; bad paging
parameters a 422 problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citizen_services.api.conditional import conditional_responses, etag_matches
from citizen_services.api.deps import CatalogueReads
from citizen_services.api.headers import header
from citizen_services.application import hsds
from servicekit.problems import problem_responses

router = APIRouter(prefix="/hsds", tags=["hsds"])

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
        if not (path == router.prefix or path.startswith(router.prefix + "/")):
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


def _text(text: str | None, search: str | None) -> str | None:
    # ORUK's parameter is ``search``; ``text`` is accepted as well.
    return text or search


def _services_query(
    *, text: str | None, search: str | None, taxonomy_term_id: str | None, page: int, per_page: int
) -> hsds.ListServices:
    """The filters and page of the two lists of services (and services at locations)."""
    return hsds.ListServices(
        text=_text(text, search),
        taxonomy_term_id=taxonomy_term_id,
        paging=hsds.Paging(page=page, per_page=per_page),
    )


@dataclass(frozen=True)
class _NameSearch:
    text: str | None
    paging: hsds.Paging


def _name_search(
    text: Text = None, search: Text = None, page: Page = 1, per_page: PerPage = 50
) -> _NameSearch:
    """The filter and page of the lists searched by name alone (organizations, locations)."""
    return _NameSearch(text=_text(text, search), paging=hsds.Paging(page=page, per_page=per_page))


#: ``text``, ``search``, ``page`` and ``per_page``: they stand in the OpenAPI document, in this
#: order, as they would in the operation's own signature.
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
    text: Text = None,
    search: Text = None,
    taxonomy_term_id: TermId = None,
    full: bool = False,
    page: Page = 1,
    per_page: PerPage = 50,
) -> Response:
    query = _services_query(
        text=text, search=search, taxonomy_term_id=taxonomy_term_id, page=page, per_page=per_page
    )
    return _list_response(
        request, await hsds.list_services(entries=entries, full=full, query=query)
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
    request: Request, entries: CatalogueReads, query: NameSearch
) -> Response:
    body = await hsds.list_organizations(entries=entries, text=query.text, paging=query.paging)
    return _list_response(request, body)


@router.get("/organizations/{organization_id}", summary="An organization", responses=ONE_RESPONSES)
async def read_organization(organization_id: RecordId, entries: CatalogueReads) -> dict[str, Any]:
    return await hsds.get_organization(entries=entries, organization=organization_id)


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
    request: Request,
    entries: CatalogueReads,
    text: Text = None,
    search: Text = None,
    taxonomy_term_id: TermId = None,
    full: bool = False,
    page: Page = 1,
    per_page: PerPage = 50,
) -> Response:
    query = _services_query(
        text=text, search=search, taxonomy_term_id=taxonomy_term_id, page=page, per_page=per_page
    )
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
async def list_taxonomies(request: Request, page: Page = 1, per_page: PerPage = 50) -> Response:
    body = await hsds.list_taxonomies(paging=hsds.Paging(page=page, per_page=per_page))
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
    text: Text = None,
    search: Text = None,
    taxonomy_id: Annotated[str | None, Query(max_length=100)] = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> Response:
    body = await hsds.list_taxonomy_terms(
        entries=entries,
        text=_text(text, search),
        taxonomy_id=taxonomy_id,
        paging=hsds.Paging(page=page, per_page=per_page),
    )
    return _list_response(request, body)


@router.get("/taxonomy_terms/{term_id}", summary="A taxonomy term", responses=ONE_RESPONSES)
async def read_taxonomy_term(term_id: RecordId, entries: CatalogueReads) -> dict[str, Any]:
    return await hsds.get_taxonomy_term(entries=entries, term=term_id)
