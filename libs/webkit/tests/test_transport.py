"""httpx over aiohttp (webkit.transport), against a real HTTP server on a free port: what
httpx's own transport does for a front-end, and httpx's exceptions when it fails."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from servicekit.testing import free_port, running_app
from webkit.transport import AiohttpTransport

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = FastAPI()

    @app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def echo(rest: str, request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "authorization": request.headers.get("authorization"),
                "content_type": request.headers.get("content-type"),
                "body": body.decode(),
            },
            status_code=201 if request.method == "POST" else 200,
            headers={"x-one": "1"},
        )

    @app.get("/gzipped")
    async def gzipped() -> Response:
        return Response(
            gzip.compress(json.dumps({"big": "x" * 5000}).encode()),
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )

    @app.get("/problem")
    async def problem() -> Response:
        return JSONResponse(
            {"title": "Not found"}, status_code=404, media_type="application/problem+json"
        )

    @app.get("/moved")
    async def moved() -> Response:
        return RedirectResponse("/echo/there", status_code=303)

    @app.get("/slow")
    async def slow() -> Response:
        await asyncio.sleep(5)
        return Response("late")

    async with running_app(app) as url:
        yield url


async def test_requests_and_answers_as_httpx_sends_them(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, transport=AiohttpTransport()) as http:
        got = await http.get(
            "/echo/a b", params={"q": "bins & bags", "page": 2}, headers={"authorization": "B x"}
        )
        assert got.status_code == 200 and got.headers["x-one"] == "1"
        assert got.json()["path"] == "/echo/a b"
        assert got.json()["query"] == "q=bins+%26+bags&page=2"
        assert got.json()["authorization"] == "B x"

        posted = await http.post("/echo/items", json={"name": "Bins"})
        assert posted.status_code == 201
        assert posted.json()["content_type"] == "application/json"
        assert json.loads(posted.json()["body"]) == {"name": "Bins"}
        assert (await http.delete("/echo/items/1")).json()["method"] == "DELETE"

        assert (await http.get("/gzipped")).json() == {"big": "x" * 5000}  # httpx decodes
        problem = await http.get("/problem")
        assert problem.status_code == 404 and problem.json() == {"title": "Not found"}
        moved = await http.get("/moved")
        assert moved.status_code == 303 and moved.headers["location"] == "/echo/there"
        followed = await http.get("/moved", follow_redirects=True)
        assert followed.json()["path"] == "/echo/there"

        # many calls at once share the pool
        answers = await asyncio.gather(*(http.get(f"/echo/{n}") for n in range(40)))
        assert [a.json()["path"] for a in answers] == [f"/echo/{n}" for n in range(40)]


async def test_failures_are_httpx_exceptions(server: str) -> None:
    async with httpx.AsyncClient(
        base_url=server, transport=AiohttpTransport(), timeout=httpx.Timeout(5, read=0.5)
    ) as http:
        with pytest.raises(httpx.TimeoutException):
            await http.get("/slow")
        assert (await http.get("/echo/after")).status_code == 200  # still usable
    closed = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient(base_url=closed, transport=AiohttpTransport()) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/anything")
