"""Who may use the console, checked on the server for every page and action.

The roles come from the ID token the provider gave at sign-in (``roles`` claim by default,
``STAFF_CONSOLE_ROLES_CLAIM``). webkit verified that token's signature, issuer, audience and
nonce at sign-in and keeps it in the encrypted, signed session cookie, so reading its claims
again here needs no second verification. The gateway checks the access token's roles again on
every API call: the console's check decides what it shows, the API's what may happen.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from webkit.app import SignInRequired, User, frontend_of, signed_in_user
from webkit.session import session_of

STAFF_ROLES = frozenset({"staff", "admin"})
ADMIN_ROLES = frozenset({"admin"})
PARTNER_ROLES = frozenset({"partner"})


class NotAllowed(Exception):
    """Signed in, but the account's roles do not include the page's."""


@dataclass(frozen=True)
class ConsoleUser(User):
    roles: frozenset[str] = frozenset()


def roles_of(request: Request) -> frozenset[str]:
    id_token = session_of(request).get("idt")
    if not isinstance(id_token, str):
        return frozenset()
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return frozenset()
    claim = getattr(frontend_of(request).settings, "roles_claim", "roles")
    value = claims.get(claim)
    if isinstance(value, str):
        value = value.split()
    return frozenset(str(r) for r in value) if isinstance(value, list) else frozenset()


def _requiring(
    allowed: frozenset[str],
) -> Callable[[Request], Coroutine[Any, Any, ConsoleUser]]:
    async def dependency(request: Request) -> ConsoleUser:
        user = signed_in_user(request)
        if user is None:
            raise SignInRequired
        roles = roles_of(request)
        if not roles & allowed:
            raise NotAllowed
        return ConsoleUser(subject=user.subject, token=user.token, roles=roles)

    return dependency


require_staff = _requiring(STAFF_ROLES)
require_admin = _requiring(ADMIN_ROLES)
require_partner = _requiring(PARTNER_ROLES)

StaffUser = Annotated[ConsoleUser, Depends(require_staff)]
AdminUser = Annotated[ConsoleUser, Depends(require_admin)]
PartnerUser = Annotated[ConsoleUser, Depends(require_partner)]
