"""Who may use the console, checked on the server for every page and action: webkit's
``require_role`` (the roles come from the ID token the provider gave at sign-in, the
``roles`` claim by default, ``STAFF_CONSOLE_OIDC_ROLES_CLAIM``, kept in the encrypted session
cookie). Anyone signed in without the role gets a 403 page; anyone not signed in is sent to
sign in. The gateway checks the access token's roles again on every API call: the console's
check decides what it shows, the API's what may happen."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from webkit.app import User, require_role

STAFF_ROLES = ("staff", "admin")
ADMIN_ROLES = ("admin",)

require_staff = require_role(*STAFF_ROLES)
require_admin = require_role(*ADMIN_ROLES)

StaffUser = Annotated[User, Depends(require_staff)]
AdminUser = Annotated[User, Depends(require_admin)]
