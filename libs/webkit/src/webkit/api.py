"""The gateway's public API, as a front-end calls it: one small client class per API resource
(``class ServiceRequestsApi(ApiClient)``), like alphagov/notifications-admin's
``*_api_client.py``, each method one call.

Every call goes to the gateway (never a service directly) as the signed-in user, with their
bearer token. An answer that is not 2xx becomes an :class:`ApiError` carrying the problem+json
``title``, ``detail`` and field errors (``errors: [{field, message}]``), so a view can put
them in the GOV.UK error summary and beside the right inputs.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from webkit.timing import record_api_call

PROBLEM_JSON = "application/problem+json"


@dataclass
class ApiError(Exception):
    status: int
    title: str
    detail: str = ""
    #: ``{field: message}``: the field is the API's dotted name (``contact.email``).
    errors: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    #: The problem's other members (``unmet_rules``, ``current_version``…).
    extras: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        body: Any = None
        if response.headers.get("content-type", "").split(";")[0].strip() in (
            PROBLEM_JSON,
            "application/json",
        ):
            try:
                body = response.json()
            except ValueError:
                body = None
        if not isinstance(body, dict):
            body = {}
        errors: dict[str, str] = {}
        for item in body.get("errors") or []:
            if isinstance(item, dict) and item.get("field"):
                errors.setdefault(str(item["field"]), str(item.get("message", "is not valid")))
        return cls(
            status=response.status_code,
            title=str(body.get("title") or response.reason_phrase or "Error"),
            detail=str(body.get("detail") or ""),
            errors=errors,
            code=str(body["code"]) if body.get("code") else _code_from_type(body.get("type")),
            extras={k: v for k, v in body.items() if k not in _STANDARD},
        )


_STANDARD = frozenset({"type", "title", "status", "detail", "instance", "errors", "code"})


def _code_from_type(value: Any) -> str | None:
    """The problem's code from its ``type`` URI (``…/problems/not-eligible``)."""
    if isinstance(value, str) and "/" in value and not value.endswith("/"):
        return value.rsplit("/", 1)[1] or None
    return None


class GatewayUnavailable(ApiError):
    pass


class ApiClient:
    """Base of the resource clients: ``self.get/post/...`` with the caller's token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str | None = None,
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        self.http = http
        self.token = token
        #: Anonymous GETs go through it (never a call with a token).
        self.cache = cache if not token else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"accept": "application/json", **(headers or {})}
        if self.token:
            sent["authorization"] = f"Bearer {self.token}"
        if params:
            params = {k: v for k, v in params.items() if v not in (None, "")}
        start = time.perf_counter()
        try:
            response = await self.http.request(method, path, json=json, params=params, headers=sent)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(
                503, "Service unavailable", "The council's systems did not answer."
            ) from exc
        finally:
            record_api_call((time.perf_counter() - start) * 1000)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    async def get(self, path: str, **params: Any) -> Any:
        if self.cache is not None:
            return json.loads(await self.cache.fetch(self, path, params))
        return (await self.request("GET", path, params=params)).json()

    async def post(self, path: str, json: Any = None) -> Any:
        response = await self.request("POST", path, json=json)
        return response.json() if response.content else None

    async def put(self, path: str, json: Any = None) -> Any:
        response = await self.request("PUT", path, json=json)
        return response.json() if response.content else None

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)


@dataclass
class _Stored:
    body: bytes
    etag: str | None
    fresh_until: float


class ResponseCache:
    """The API's public answers, kept in the front-end's memory as HTTP caching says
    (RFC 9111, cut down): an anonymous GET whose answer is ``200`` with ``Cache-Control:
    public`` is kept (``private``, ``no-store`` or a ``Vary`` never); it is served without a
    call while younger than its ``max-age`` (``s-maxage`` first, none with ``no-cache``), then
    revalidated with ``If-None-Match`` (a ``304`` renews it; the service often answers that
    without doing the work again). A call with the user's token never reaches it, so nothing
    personal is shared between users. At most ``max_entries`` answers (least recently used
    go first), each at most ``max_body_bytes``."""

    def __init__(self, *, max_entries: int = 256, max_body_bytes: int = 512_000) -> None:
        self.max_entries = max_entries
        self.max_body_bytes = max_body_bytes
        self._stored: OrderedDict[str, _Stored] = OrderedDict()

    def __len__(self) -> int:
        return len(self._stored)

    def clear(self) -> None:
        self._stored.clear()

    async def fetch(self, client: ApiClient, path: str, params: dict[str, Any]) -> bytes:
        """The answer's body: from memory while fresh, else from the gateway."""
        query = sorted((k, str(v)) for k, v in params.items() if v not in (None, ""))
        key = path + ("?" + urlencode(query) if query else "")
        stored = self._stored.get(key)
        now = time.monotonic()
        if stored is not None:
            self._stored.move_to_end(key)
            if now < stored.fresh_until:
                return stored.body
        headers = {"if-none-match": stored.etag} if stored is not None and stored.etag else None
        response = await client.request("GET", path, params=params, headers=headers)
        if response.status_code == 304 and stored is not None:
            stored.fresh_until = now + _freshness(response.headers.get("cache-control", ""))
            return stored.body
        self._store(key, response, now)
        return response.content

    def _store(self, key: str, response: httpx.Response, now: float) -> None:
        directives = _directives(response.headers.get("cache-control", ""))
        keep = (
            response.status_code == 200
            and "public" in directives
            and not {"private", "no-store"} & directives.keys()
            and "vary" not in response.headers
            and len(response.content) <= self.max_body_bytes
        )
        fresh_for = _freshness(response.headers.get("cache-control", ""))
        etag = response.headers.get("etag")
        if not keep or (fresh_for <= 0 and not etag):
            self._stored.pop(key, None)
            return
        self._stored[key] = _Stored(response.content, etag, now + fresh_for)
        self._stored.move_to_end(key)
        while len(self._stored) > self.max_entries:
            self._stored.popitem(last=False)


def _directives(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.lower()] = value.strip().strip('"')
    return found


def _freshness(header: str) -> float:
    """Seconds an answer with this ``Cache-Control`` may be used without asking again."""
    directives = _directives(header)
    if "no-cache" in directives:
        return 0.0
    for name in ("s-maxage", "max-age"):
        value = directives.get(name, "")
        if value.isdigit():
            return float(value)
    return 0.0
