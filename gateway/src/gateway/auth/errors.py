"""Why a request's credentials were refused. Messages never echo a token or a key."""

from __future__ import annotations

REALM = "mk-digital"
BEARER_CHALLENGE = f'Bearer realm="{REALM}"'
INVALID_TOKEN = f'Bearer realm="{REALM}", error="invalid_token"'
INSUFFICIENT_SCOPE = f'Bearer realm="{REALM}", error="insufficient_scope"'
API_KEY_CHALLENGE = f'ApiKey realm="{REALM}"'


class AuthFailed(Exception):
    """Credentials were presented and refused: answer ``status`` with a problem+json body
    (``title``, ``detail``) and, when set, the ``WWW-Authenticate`` header."""

    def __init__(
        self,
        detail: str,
        *,
        status: int = 401,
        title: str = "Authentication failed",
        www_authenticate: str | None = INVALID_TOKEN,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.www_authenticate = www_authenticate

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The response headers to send with the problem (``WWW-Authenticate``, if any)."""
        return [("www-authenticate", self.www_authenticate)] if self.www_authenticate else []


def invalid_token(detail: str) -> AuthFailed:
    return AuthFailed(detail, title="Invalid token", www_authenticate=INVALID_TOKEN)


def invalid_api_key(detail: str = "The API key is not valid.") -> AuthFailed:
    return AuthFailed(detail, title="Invalid API key", www_authenticate=API_KEY_CHALLENGE)


def bad_credentials(detail: str) -> AuthFailed:
    return AuthFailed(detail, title="Invalid credentials", www_authenticate=BEARER_CHALLENGE)


def unavailable(detail: str) -> AuthFailed:
    """The identity provider's keys cannot be fetched: not the caller's fault."""
    return AuthFailed(detail, status=503, title="Authentication unavailable", www_authenticate=None)
