"""The cache of the API's public answers (webkit.api.ResponseCache) and ``Server-Timing``,
against a real HTTP server on a free port that answers as the API does (``Cache-Control``,
``ETag``, ``304`` to a matching ``If-None-Match``) and counts what it was asked."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from servicekit.testing import free_port, running_app
from webkit.api import ApiClient, ResponseCache
from webkit.app import FrontendDep, Link, create_frontend

from .conftest import TEMPLATES, DemoSettings

pytestmark = pytest.mark.timeout(120)

#: ``/answer/<name>``: the Cache-Control each name answers with (None: no header).
POLICIES = {
    "fresh": "public, max-age=60",
    "revalidate": "public, no-cache",
    "private": "private, max-age=60",
    "unmarked": None,
}


@dataclass
class Upstream:
    url: str
    full: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)
    version: int = 1


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    app = FastAPI()
    state = Upstream("")

    @app.get("/answer/{name}")
    async def answer(name: str, request: Request, q: str = "") -> Response:
        etag = f'"{state.version}"'
        headers = {"etag": etag}
        if POLICIES[name]:
            headers["cache-control"] = POLICIES[name] or ""
        if request.headers.get("if-none-match") == etag:
            state.not_modified[name] += 1
            return Response(status_code=304, headers=headers)
        state.full[name] += 1
        body = {"name": name, "q": q, "version": state.version, "n": state.full[name]}
        return JSONResponse(body, headers=headers)

    async with running_app(app) as url:
        state.url = url
        yield state


async def test_public_answers_are_kept_for_their_max_age_and_revalidated(
    upstream: Upstream,
) -> None:
    cache = ResponseCache()
    async with httpx.AsyncClient(base_url=upstream.url) as http:
        anonymous = ApiClient(http, cache=cache)
        first = await anonymous.get("/answer/fresh", q="bins")
        assert await anonymous.get("/answer/fresh", q="bins") == first
        assert upstream.full["fresh"] == 1  # the second came from memory
        other = await anonymous.get("/answer/fresh", q="parking")
        assert other["q"] == "parking" and upstream.full["fresh"] == 2  # the query is the key

        # no-cache: asked every time, with the ETag; a 304 keeps the body kept
        kept = await anonymous.get("/answer/revalidate")
        assert await anonymous.get("/answer/revalidate") == kept
        assert (upstream.full["revalidate"], upstream.not_modified["revalidate"]) == (1, 1)
        upstream.version = 2  # changed upstream: the new answer replaces the kept one
        changed = await anonymous.get("/answer/revalidate")
        assert changed["version"] == 2 and upstream.full["revalidate"] == 2

        # not marked public: never kept, never revalidated
        for name in ("private", "unmarked"):
            await anonymous.get(f"/answer/{name}")
            await anonymous.get(f"/answer/{name}")
            assert (upstream.full[name], upstream.not_modified[name]) == (2, 0)
        assert len(cache) == 3  # fresh x2, revalidate

        # a call with a user's token never reaches the cache
        signed_in = ApiClient(http, "a-users-token", cache=cache)
        assert signed_in.cache is None
        await signed_in.get("/answer/fresh", q="bins")
        assert upstream.full["fresh"] == 3


async def test_the_cache_keeps_its_most_recently_used_answers_only(upstream: Upstream) -> None:
    cache = ResponseCache(max_entries=2)
    async with httpx.AsyncClient(base_url=upstream.url) as http:
        api = ApiClient(http, cache=cache)
        for q in ("a", "b", "a", "c"):
            await api.get("/answer/fresh", q=q)
        assert len(cache) == 2 and upstream.full["fresh"] == 3
        await api.get("/answer/fresh", q="a")  # used recently: still kept
        await api.get("/answer/fresh", q="b")  # dropped for c: asked again
        assert upstream.full["fresh"] == 4


async def test_server_timing_counts_the_pages_gateway_calls(upstream: Upstream) -> None:
    router = APIRouter()

    @router.get("/two-calls")
    async def two_calls(request: Request, frontend: FrontendDep) -> Response:
        api = frontend.client(ApiClient)
        await api.get("/answer/unmarked")
        await api.get("/answer/unmarked")
        return frontend.render(request, "demo.html", page_title="Two", message="two")

    port = free_port()
    settings = DemoSettings(
        environment="test",
        public_url=f"http://127.0.0.1:{port}",
        gateway_url=upstream.url,
        oidc_issuer=upstream.url + "/issuer",
    )
    app = create_frontend(
        settings,
        site_name="Test council",
        service_name="Demo service",
        templates=TEMPLATES,
        navigation=[Link("Home", "/")],
        routers=[router],
    )
    async with running_app(app, port=port) as url, httpx.AsyncClient(base_url=url) as browser:
        page = await browser.get("/two-calls")
        home = await browser.get("/")
    assert page.status_code == 200 and upstream.full["unmarked"] == 2
    timing = page.headers["server-timing"]
    found = re.fullmatch(
        r'app;dur=([\d.]+);desc="page", api;dur=([\d.]+);desc="2 gateway calls"', timing
    )
    assert found, timing
    assert 0 < float(found.group(2)) <= float(found.group(1))
    assert home.headers["server-timing"].endswith('api;dur=0.0;desc="0 gateway calls"')
