"""Find a council service: search with a group filter, A to Z, and a service's own page."""

from __future__ import annotations

import asyncio
import string
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from citizen_portal.clients import ServicesApi
from webkit.app import FrontendDep

router = APIRouter(prefix="/services")
PAGE_SIZE = 20
#: The whole published catalogue (for A to Z and the group filter), kept this long.
CATALOGUE_SECONDS = 60.0
_catalogue: dict[str, tuple[float, list[dict[str, Any]]]] = {}


_refreshing = asyncio.Lock()


async def _all_services(api: ServicesApi) -> list[dict[str, Any]]:
    cached = _catalogue.get("all")
    if cached and time.monotonic() - cached[0] < CATALOGUE_SECONDS:
        return cached[1]
    async with _refreshing:  # one refresh at a time: the others wait for its answer
        cached = _catalogue.get("all")
        if cached and time.monotonic() - cached[0] < CATALOGUE_SECONDS:
            return cached[1]
        return await _fetch_all(api)


async def _fetch_all(api: ServicesApi) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        result = await api.search(page=page, size=100, sort="name")
        items.extend(result["items"])
        if len(items) >= result["total"] or not result["items"]:
            break
        page += 1
    _catalogue["all"] = (time.monotonic(), items)
    return items


@router.get("")
async def search(
    request: Request, frontend: FrontendDep, q: str = "", group: str = "", page: int = 1
) -> Response:
    api = frontend.client(ServicesApi)
    q, group = q.strip()[:200], group.strip()[:200]
    page = max(1, min(page, 500))
    groups = sorted({g for s in await _all_services(api) for g in s.get("groups", [])})
    if group not in groups:
        group = ""
    result = await api.search(q=q, group=group, page=page, size=PAGE_SIZE)
    pages = max(1, -(-result["total"] // PAGE_SIZE))
    return frontend.render(
        request,
        "services/search.html",
        page_title="Find a council service",
        q=q,
        group=group,
        groups=groups,
        result=result,
        page=page,
        pages=pages,
    )


@router.get("/a-z")
async def a_to_z(request: Request, frontend: FrontendDep, letter: str = "A") -> Response:
    letter = letter.upper()[:1]
    if letter not in string.ascii_uppercase:
        letter = "A"
    services = await _all_services(frontend.client(ServicesApi))
    shown = [s for s in services if s["name"].upper().startswith(letter)]
    return frontend.render(
        request,
        "services/a_to_z.html",
        page_title=f"Council services A to Z: {letter}",
        letter=letter,
        letters=string.ascii_uppercase,
        services=shown,
    )


@router.get("/{service_id}")
async def service_page(request: Request, frontend: FrontendDep, service_id: uuid.UUID) -> Response:
    service = await frontend.client(ServicesApi).one(str(service_id))
    return frontend.render(
        request, "services/service.html", page_title=service["name"], service=service
    )
