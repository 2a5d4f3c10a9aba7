"""httpx's client interface over aiohttp's connection pool: the front-ends keep httpx (its
API, its errors, what the resource clients and tests use) and send with aiohttp, which costs
about half the CPU per call here (a standalone trial against the gateway: httpx's own
transport 1.5-1.6 ms of client CPU a call, this one 0.8-1.1). The gateway's proxy made the
same choice (CONVENTIONS.md, point 8).

Whole answers only (a front-end reads every answer it asks for); bodies are decoded by httpx
(``auto_decompress`` off), redirects followed by httpx when asked (aiohttp never), no cookie
kept. aiohttp retries a GET once when a reused keep-alive connection turns out closed.
Failures become httpx's own exceptions (``httpx.TimeoutException``, ``httpx.ConnectError``,
``httpx.TransportError``), so callers catching ``httpx.HTTPError`` see no difference.
"""

from __future__ import annotations

import aiohttp
import httpx
import yarl

#: Set by aiohttp from the request itself.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 64, keepalive_seconds: float = 15.0) -> None:
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # made on first use, inside the running event loop
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections, keepalive_timeout=self.keepalive_seconds
                ),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        limits = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=limits.get("connect"),
            sock_read=limits.get("read"),
        )
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in _OWN_HEADERS
        ]
        body = await request.aread()
        try:
            async with self._client().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            ) as answer:
                content = await answer.read()
                return httpx.Response(
                    answer.status,
                    headers=answer.raw_headers,
                    content=content,
                    request=request,
                )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.TimeoutException(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
