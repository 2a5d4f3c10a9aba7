"""RFC 9457 problem details, mapped once for every service.

Domain code raises :class:`DomainError` subclasses (plain Python, no HTTP); each carries the
status and a stable ``type`` slug. Validation errors name each bad field. Unexpected errors
answer a bare 500 problem without internals. Compatibility surfaces (Open311, GOV.UK Notify)
install their own handlers for their own paths.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://mk-digital.example/problems/"


class DomainError(Exception):
    """A broken business rule. Subclass and set ``status``, ``code`` and ``title``."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class NotFound(DomainError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(DomainError):
    status, code, title = 412, "precondition-failed", "Precondition failed"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Authentication required"


def problem(status: int, title: str, detail: str | None = None, *, code: str | None = None,
            headers: dict[str, str] | None = None, **extensions: Any) -> JSONResponse:
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
    return problem(exc.status, exc.title, exc.detail, code=exc.code,
                   instance=request.url.path, **exc.extensions)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _loc(e.get("loc", ())), "message": e.get("msg", "invalid")}
              for e in exc.errors()]
    names = ", ".join(sorted({e["field"] for e in errors}))
    return problem(422, "Invalid request", f"Invalid field(s): {names}", code="validation-error",
                   instance=request.url.path, errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed", 401: "Authentication required",
             403: "Forbidden"}.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem(exc.status_code, title, detail, instance=request.url.path,
                   headers=dict(exc.headers) if exc.headers else None)


#: PostgreSQL's SQLSTATEs for text it cannot store: a NUL character (22021
#: character_not_in_repertoire) or a character outside the encoding (22P05).
UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL refuses as text (a NUL in a query parameter or a JSON string,
    which SQLite stores) is the client's input, not our failure: 400, and the transaction
    it was in has been rolled back, so nothing is half-written."""
    if getattr(getattr(exc, "orig", None), "sqlstate", None) in UNSTORABLE_TEXT_SQLSTATES:
        return problem(400, "Unstorable text",
                       "A value contains a character that cannot be stored, such as NUL "
                       "(U+0000).", code="unstorable-text", instance=request.url.path)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal server error",
                   "Something went wrong on our side. It has been logged.",
                   code="internal-error")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
