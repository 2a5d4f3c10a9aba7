"""RFC 9457 problem+json over HTTP, in one place: the responses, the FastAPI exception
handlers that write them (mapped once for every service), and their OpenAPI description.

Domain code raises :class:`~servicekit.errors.DomainError` subclasses (plain Python, no
HTTP); :func:`install_problem_handlers` answers each with its status and ``type`` slug.
Validation errors name each bad field. Unexpected errors answer a bare 500 problem without
internals. Compatibility surfaces (Open311, GOV.UK Notify) install their own handlers for
their own paths.

In OpenAPI (:func:`document_problems`, applied to every service's document by
``create_service_app`` and to the gateway's): 422 as a ``ValidationProblem`` (servicekit
answers validation errors with problem+json, not FastAPI's ``HTTPValidationError``), 401/403
where an operation requires roles, 404 where an operation addresses a resource by path.
Errors only a router knows about (409, 412...) are declared on the route with
:func:`problem_responses`.
"""

from __future__ import annotations

import copy
import http
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.errors import PROBLEM_JSON, TYPE_BASE, DomainError
from servicekit.identity import IDENTITY_SCHEME

log = logging.getLogger(__name__)


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (code or _slug(title)),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _slug(text: str) -> str:
    return "-".join(text.lower().split())


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] or [str(p) for p in loc]
    return ".".join(parts)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        code=exc.code,
        instance=request.url.path,
        **exc.extensions,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _loc(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()
    ]
    names = ", ".join(sorted({e["field"] for e in errors}))
    return problem(
        422,
        "Invalid request",
        f"Invalid field(s): {names}",
        code="validation-error",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {
        404: "Not found",
        405: "Method not allowed",
        401: "Authentication required",
        403: "Forbidden",
    }.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem(
        exc.status_code,
        title,
        detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


#: PostgreSQL's SQLSTATEs for text it cannot store: a NUL character (22021
#: character_not_in_repertoire) or a character outside the encoding (22P05).
UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL refuses as text (a NUL in a query parameter or a JSON string,
    which SQLite stores) is the client's input, not our failure: 400, and the transaction
    it was in has been rolled back, so nothing is half-written."""
    if getattr(getattr(exc, "orig", None), "sqlstate", None) in UNSTORABLE_TEXT_SQLSTATES:
        return problem(
            400,
            "Unstorable text",
            "A value contains a character that cannot be stored, such as NUL (U+0000).",
            code="unstorable-text",
            instance=request.url.path,
        )
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        500,
        "Internal server error",
        "Something went wrong on our side. It has been logged.",
        code="internal-error",
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)


# -- in OpenAPI ----------------------------------------------------------------------------


SCHEMA_REF = "#/components/schemas/"
#: RFC 9457 problem details as servicekit (and the gateway) write them.
PROBLEM_SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "title": "Problem",
        "type": "object",
        "description": "RFC 9457 problem details. Members beyond these (e.g. "
        "``required_roles``, ``current_status``) carry details of the problem.",
        "properties": {
            "type": {
                "type": "string",
                "format": "uri",
                "description": "Identifies the kind of problem; stable, for machines.",
            },
            "title": {"type": "string", "description": "A short summary of the kind."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What went wrong this time."},
            "instance": {"type": "string", "description": "The path of the request."},
        },
        "required": ["type", "title", "status"],
        "additionalProperties": True,
    },
    "FieldProblem": {
        "title": "FieldProblem",
        "type": "object",
        "properties": {
            "field": {"type": "string", "description": "Dotted location of the bad value."},
            "message": {"type": "string"},
        },
        "required": ["field", "message"],
    },
    "ValidationProblem": {
        "title": "ValidationProblem",
        "description": "The request was well-formed but invalid. When it broke the "
        "operation's schema, ``errors`` names each invalid field; a business "
        "rule the data broke is told in ``detail``.",
        "allOf": [
            {"$ref": SCHEMA_REF + "Problem"},
            {
                "type": "object",
                "properties": {
                    "errors": {"type": "array", "items": {"$ref": SCHEMA_REF + "FieldProblem"}}
                },
            },
        ],
    },
}
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request",
    401: "Authentication required: no valid credentials were presented",
    403: "Forbidden: the caller's role does not allow this",
    404: "Not found (or not visible to this caller)",
    409: "Conflict with the resource's current state",
    412: "Precondition failed: the resource changed since it was read (ETag)",
    413: "Request body too large",
    422: "Invalid request: each invalid field is named",
    429: "Too many requests: retry after the time in Retry-After",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Upstream timed out",
}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def problem_response(
    status: int, description: str | None = None, *, schema: str = "Problem"
) -> dict[str, Any]:
    """One OpenAPI response object: ``application/problem+json`` with the ``schema``."""
    return {
        "description": description
        or PROBLEM_DESCRIPTIONS.get(status)
        or http.HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": SCHEMA_REF + schema}}},
    }


def problem_responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the problems it answers beyond the common ones, each a
    status or ``(status, description)``, e.g. ``problem_responses((409, "Already exists"))``.
    """
    pairs = [s if isinstance(s, tuple) else (s, None) for s in statuses]
    return {status: problem_response(status, description) for status, description in pairs}


def _is_secured(operation: dict[str, Any]) -> bool:
    return any(IDENTITY_SCHEME in requirement for requirement in operation.get("security", ()))


def _references(node: Any, name: str) -> bool:
    if isinstance(node, dict):
        return any(
            (k == "$ref" and v == SCHEMA_REF + name) or _references(v, name)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return any(_references(v, name) for v in node)
    return False


def document_problems(
    openapi: dict[str, Any],
    *,
    secured: Callable[[dict[str, Any]], bool] = _is_secured,
) -> dict[str, Any]:
    """Document, in an app's OpenAPI (in place), the problem+json errors servicekit answers.

    * 422 (request validation) is a ``ValidationProblem``, not FastAPI's HTTPValidationError;
    * operations that require roles (``secured``) answer 401 and 403;
    * operations with a request body answer 400 when it cannot be read at all (not UTF-8),
      and operations with query parameters when a value cannot be stored (a NUL);
    * operations with path parameters answer 404;
    * any error response declared without content (``responses={409: {...}}``) is a Problem.

    Responses an operation declares itself are kept. Idempotent.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in PROBLEM_SCHEMAS.items():
        schemas.setdefault(name, copy.deepcopy(schema))
    for item in openapi.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if _references(responses.get("422"), "HTTPValidationError"):  # FastAPI's own
                responses["422"] = problem_response(422, schema="ValidationProblem")
            if "requestBody" in operation:
                responses.setdefault(
                    "400", problem_response(400, "Bad request: the body could not be parsed")
                )
            elif any(p.get("in") == "query" for p in operation.get("parameters", ())):
                responses.setdefault(
                    "400",
                    problem_response(
                        400, "Bad request: a value the database cannot store or search for (NUL)"
                    ),
                )
            if secured(operation):
                responses.setdefault("401", problem_response(401))
                responses.setdefault("403", problem_response(403))
            if any(p.get("in") == "path" for p in operation.get("parameters", ())):
                responses.setdefault("404", problem_response(404))
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400 and not response.get("content"):
                    response["content"] = problem_response(int(status))["content"]
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_VALIDATION:  # no longer referenced: do not publish them
        if (
            name in schemas
            and not any(_references(openapi[k], name) for k in openapi if k != "components")
            and not any(_references(s, name) for n, s in schemas.items() if n != name)
        ):
            del schemas[name]
    return openapi
