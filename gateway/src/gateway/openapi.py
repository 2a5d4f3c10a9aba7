"""One API surface: the services' OpenAPI documents merged into the gateway's.

Each service documents the roles an operation needs with the internal ``MkIdentity``
security scheme (see ``servicekit.identity.require_roles``). Here that becomes what a client
actually uses at the gateway — a bearer JWT or an API key — with the roles in ``x-roles``.
Only paths the routing table sends to that service are published (no ``/metrics``,
``/health/*``). Schema names that clash between services are prefixed with the service.

Routes whose upstream authenticates callers itself (``AuthMode.UPSTREAM``) keep that
upstream's security scheme: GOV.UK Notify's ``/v2`` is published with the notifications
service's own ``notifyJwt`` scheme (HTTP bearer JWT) and Notify's error shape.

Every operation also documents the errors the gateway itself answers before a request
reaches a service (see ``main.Gateway``; problem+json, or Open311's error shape on Open311
routes, as ``problems.send_error`` writes them): 400 for a dot segment in a path parameter,
401/403 for refused credentials where the gateway authenticates, 408 for a body that did not
arrive in time, 413 for a body over the route's limit, 429 for a rate limit, 503 for an open
circuit, an unreachable service or a full queue for it, and 504 for one that timed out.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import aiohttp

from gateway.routes import AuthMode, Route, Upstream, match
from servicekit.problems import PROBLEM_SCHEMAS, document_problems, problem_response

log = logging.getLogger(__name__)

IDENTITY_SCHEME = "MkIdentity"
PUBLIC_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from the council's identity provider (citizens and staff).",
    },
    "apiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An integration partner's API key (created by an admin).",
    },
    "open311ApiKey": {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": "Open311 GeoReport v2 api_key (also accepted as a "
        "form field on POST requests).",
    },
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_HEADER = {"schema": {"type": "string"}}
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "Retry-After": {**_HEADER, "description": "Seconds until a request can pass."},
    "RateLimit": {**_HEADER, "description": "Quota left in the policy (IETF draft syntax)."},
    "RateLimit-Policy": {**_HEADER, "description": "The policy: quota per window."},
}


def _scheme_key(scheme: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(scheme.get("type", "")),
        str(scheme.get("scheme", "")).lower(),
        str(scheme.get("in", "")),
        str(scheme.get("name", "")).lower(),
    )


#: The gateway's own documents may name the public schemes differently ("bearer").
_PUBLIC_BY_KEY = {_scheme_key(scheme): name for name, scheme in PUBLIC_SCHEMES.items()}


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                name = v.rsplit("/", 1)[1]
                out[k] = "#/components/schemas/" + renames.get(name, name)
            else:
                out[k] = _rewrite_refs(v, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _public_security(operation: dict[str, Any], route: Route) -> None:
    requirements = operation.pop("security", None) or []
    roles: list[str] = []
    other: list[dict[str, list[str]]] = []
    for req in requirements:
        if IDENTITY_SCHEME in req:
            roles.extend(req[IDENTITY_SCHEME])
        else:
            other.append(req)
    if route.auth is AuthMode.UPSTREAM:
        if other:
            operation["security"] = other
        return
    if roles:
        operation["x-roles"] = sorted(set(roles))
        schemes: list[dict[str, list[str]]] = [{"bearerAuth": []}]
        if {"partner", "admin"} & set(roles) or route.auth is AuthMode.OPEN311:
            schemes.append({"apiKeyAuth": []})
        if route.auth is AuthMode.OPEN311:
            schemes.append({"open311ApiKey": []})
        operation["security"] = schemes + other
    elif other:
        operation["security"] = other


def _security_renames(
    spec: dict[str, Any], upstream: Upstream | None, prefix: str, schemes: dict[str, Any]
) -> dict[str, str]:
    """Put ``spec``'s security schemes into ``schemes``; returns their new names.

    In the gateway's own documents a scheme equal to a public one is that public scheme
    (the gateway authenticates it); a service's schemes other than the identity assertion
    (GOV.UK Notify's JWT, passed through) are published as they are, prefixed on a clash."""
    renames: dict[str, str] = {}
    for name, scheme in spec.get("components", {}).get("securitySchemes", {}).items():
        if name == IDENTITY_SCHEME:
            continue
        public = _PUBLIC_BY_KEY.get(_scheme_key(scheme)) if upstream is None else None
        if public is None:
            public = name if schemes.get(name, scheme) == scheme else prefix + name
            schemes[public] = scheme
        renames[name] = public
    return renames


#: The errors the gateway answers on Open311 routes (``problems.send_error``), by suffix.
OPEN311_ERRORS_CONTENT: dict[str, Any] = {
    "application/json": {
        "schema": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "description"],
                "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
            },
        }
    },
    "text/xml": {
        "schema": {
            "type": "string",
            "description": "<errors><error><code/><description/></error></errors>",
        }
    },
}


def open311_error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": copy.deepcopy(OPEN311_ERRORS_CONTENT)}


def _gateway_problems(operation: dict[str, Any], route: Route, *, proxied: bool) -> None:
    """Document the problems the gateway answers itself for this operation."""
    responses: dict[str, Any] = operation.setdefault("responses", {})

    def add(status: int, description: str, headers: dict[str, Any] | None = None) -> None:
        response = responses.setdefault(
            str(status),
            open311_error_response(description)
            if route.auth is AuthMode.OPEN311
            else problem_response(status, description),
        )
        if description not in response.get("description", ""):  # the service's, and ours
            response["description"] = f"{response.get('description')}; or: {description}"
        if headers:
            response.setdefault("headers", {}).update(copy.deepcopy(headers))

    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        add(400, "Bad request: a path parameter was a dot segment ('.' or '..')")
    if route.auth is not AuthMode.UPSTREAM:
        add(
            401,
            "Credentials were presented and refused (invalid, expired, revoked or more "
            "than one)" + ("; or none were presented" if operation.get("x-roles") else ""),
            {"WWW-Authenticate": {**_HEADER, "description": "The challenge."}},
        )
        add(403, "Forbidden: the token carries no role this platform recognises")
    if "requestBody" in operation:
        add(408, "Request timeout: the request body did not arrive in time")
        add(413, "Request body too large for this route")
    add(429, "Too many requests: a rate limit was reached", RATE_LIMIT_HEADERS)
    add(
        503,
        "The service is unavailable (its circuit is open, it could not be reached, or "
        "too many requests are waiting for it)",
        {"Retry-After": RATE_LIMIT_HEADERS["Retry-After"]},
    )
    if proxied:
        add(504, "The service did not answer in time")
    operation["responses"] = dict(sorted(responses.items()))


def merge(
    specs: list[tuple[Upstream | None, dict[str, Any]]],
    routes: tuple[Route, ...],
    *,
    title: str,
    version: str,
) -> dict[str, Any]:
    """Merge ``(upstream, spec)`` pairs; ``upstream`` None means the gateway's own paths."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every operation of the Milton Keynes digital platform, "
            "as served by the gateway.",
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "schemas": copy.deepcopy(PROBLEM_SCHEMAS),
            "securitySchemes": dict(PUBLIC_SCHEMES),
        },
        "tags": [],
    }
    schemas: dict[str, Any] = doc["components"]["schemas"]
    for upstream, raw in specs:
        spec = copy.deepcopy(raw)
        prefix = "".join(
            p.capitalize() for p in (upstream.name if upstream else "gateway").split("-")
        )
        if upstream is None:  # the admin API: servicekit's problem+json errors, any scheme
            document_problems(spec, secured=lambda operation: bool(operation.get("security")))
        security = _security_renames(spec, upstream, prefix, doc["components"]["securitySchemes"])
        renames = {
            name: prefix + name
            for name, schema in spec.get("components", {}).get("schemas", {}).items()
            if name in schemas and schemas[name] != schema
        }
        spec = _rewrite_refs(spec, renames)
        for name, schema in spec.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        for path, item in spec.get("paths", {}).items():
            route = match(path, routes)
            if upstream is not None and (route is None or route.upstream != upstream.name):
                continue
            for method in METHODS:
                if method in item:
                    operation = item[method]
                    if "security" in operation:
                        operation["security"] = [
                            {security.get(k, k): v for k, v in req.items()}
                            for req in operation["security"]
                        ]
                    _public_security(operation, route or Route(path, "gateway"))
                    _gateway_problems(
                        operation, route or Route(path, "gateway"), proxied=upstream is not None
                    )
            doc["paths"][path] = item
        for tag in spec.get("tags", []):
            if tag not in doc["tags"]:
                doc["tags"].append(tag)
    return doc


class Aggregator:
    """Fetches the services' documents (cached for ``ttl`` seconds) and merges them."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        upstreams: dict[str, Upstream],
        routes: tuple[Route, ...],
        own: list[dict[str, Any]],
        *,
        ttl: float = 30.0,
        version: str = "0.1.0",
    ) -> None:
        self.http = http
        self.upstreams = upstreams
        self.routes = routes
        self.own = own
        self.ttl = ttl
        self.version = version
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, upstream: Upstream) -> dict[str, Any] | None:
        """The service's document, from the first of its replicas that gives it."""
        for url in upstream.urls:
            try:
                async with self.http.get(
                    url + "/openapi.json", timeout=aiohttp.ClientTimeout(total=15)
                ) as resp:
                    if resp.status == 200:
                        data: dict[str, Any] = await resp.json(content_type=None)
                        return data
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("no OpenAPI from %s: %s", upstream.name, type(exc).__name__)
        return None

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            fetched = await asyncio.gather(*(self._fetch(u) for u in self.upstreams.values()))
            specs: list[tuple[Upstream | None, dict[str, Any]]] = [
                (None, spec) for spec in self.own
            ]
            specs += [
                (u, spec)
                for u, spec in zip(self.upstreams.values(), fetched, strict=True)
                if spec is not None
            ]
            doc = merge(
                specs, self.routes, title="Milton Keynes digital platform API", version=self.version
            )
            missing = [
                u.name
                for u, spec in zip(self.upstreams.values(), fetched, strict=True)
                if spec is None
            ]
            if missing:
                doc["info"]["x-unavailable-services"] = missing
            else:  # only a complete document is cached
                self._cached = (time.monotonic(), doc)
            return doc
