"""GOV.UK Notify's rules as plain Python: key types, API key format, its errors.

An API key is ``{key_name}-{service_id}-{secret}``; clients split the last 73 characters
into the service id (36) and the secret (36) and sign an HS256 JWT with the secret, ``iss``
the service id and ``iat`` the current time (within 30 seconds of ours).
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Any


class KeyType(StrEnum):
    LIVE = "normal"  # Notify's own name for a live key
    TEAM = "team"
    TEST = "test"


class TemplateType(StrEnum):
    EMAIL = "email"
    SMS = "sms"


def format_api_key(key_name: str, service_id: uuid.UUID, secret: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", key_name.strip().lower()).strip("_") or "key"
    return f"{name}-{service_id}-{secret}"


def split_api_key(api_key: str) -> tuple[str, str]:
    """(service id, secret), as Notify's clients split a key."""
    return api_key[-73:-37], api_key[-36:]


class NotifyError(Exception):
    """An error as Notify answers it: ``{"status_code", "errors": [{"error", "message"}]}``
    (``more``: further messages of the same error, as Notify lists every schema error)."""

    status_code = 400
    error = "BadRequestError"

    def __init__(
        self, message: str, *, status_code: int | None = None, more: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.messages = (message, *(m for m in more if m != message))
        if status_code is not None:
            self.status_code = status_code


class AuthError(NotifyError):
    status_code, error = 403, "AuthError"


class BadRequestError(NotifyError):
    status_code, error = 400, "BadRequestError"


class NotifyValidationError(NotifyError):
    """Notify's ``ValidationError`` (its JSON name; not pydantic's)."""

    status_code, error = 400, "ValidationError"


class NoResultFound(NotifyError):
    status_code, error = 404, "NoResultFound"


class RateLimitError(NotifyError):
    status_code, error = 429, "RateLimitError"


def shown(value: Any) -> str:
    """A value as Notify's schema errors show it: Python's ``repr`` without single quotes
    (``reference 'x' is too long`` reads ``reference x is too long``)."""
    return repr(value).replace("'", "")


def unexpected(names: Any) -> str | None:
    """Notify's message for fields its schema does not know (``None`` if there are none):
    ``Additional properties are not allowed (a, b were unexpected)``, sorted."""
    extras = sorted({str(n) for n in names})
    if not extras:
        return None
    verb = "was" if len(extras) == 1 else "were"
    return f"Additional properties are not allowed ({', '.join(extras)} {verb} unexpected)"


def parse_uuid(value: Any, field: str) -> uuid.UUID:
    """A UUID, or Notify's ValidationError ``<field> is not a valid UUID``."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotifyValidationError(f"{field} is not a valid UUID") from None


TOKEN_MISSING = "Unauthorized: authentication token must be provided"  # noqa: S105
BEARER_REQUIRED = "Unauthorized: authentication bearer scheme must be used"
KEY_NOT_FOUND = "Invalid token: API key not found"
CLOCK_SKEW = "Error: Your system clock must be accurate to within 30 seconds"
TEAM_ONLY = "Can\u2019t send to this recipient using a team-only API key"


# -- sanitise_content_for ----------------------------------------------------------------
#: Something that looks like a link (optional scheme, dotted host, optional path), not part
#: of an email address: Notify's pattern for links in personalisation.
_LINK = re.compile(r"(?i)\b(?<![@.])(https?://)?([\w\-]+\.)+([a-z]{2,63})(?!@)\b([/?#][^<\s]*)?")
_MARKDOWN = re.compile(r"([`*_()\\{}\[\]<>#+\-.!|])")
_BARE_HOST = re.compile(r"[a-zA-Z0-9.\-]+")


def sanitise_value(value: Any) -> Any:
    """A personalisation value made safe in an email body, as Notify does for the names in
    ``sanitise_content_for``: a bare host name (``example.com``) is broken up
    (``example. com``), any other link removed, and markdown characters escaped with ``\\``.
    Lists are sanitised item by item; other values are left as they are."""
    if isinstance(value, list):
        return [sanitise_value(item) for item in value]
    if not isinstance(value, str):
        return value

    def unlink(match: re.Match[str]) -> str:
        link = match.group()
        return link.replace(".", ". ") if _BARE_HOST.fullmatch(link) else ""

    return _MARKDOWN.sub(r"\\\1", _LINK.sub(unlink, value))
