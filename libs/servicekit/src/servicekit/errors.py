"""Domain errors: plain Python, no HTTP framework (``application/`` and ``domain/`` raise them).

Each :class:`DomainError` subclass carries the HTTP status it maps to and a stable ``type``
slug; :mod:`servicekit.problems` maps them once to RFC 9457 problem+json for every service.
This module imports neither FastAPI nor Starlette.
"""

from __future__ import annotations

from typing import Any

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
