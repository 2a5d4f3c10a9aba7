"""Dependency aliases of the inclusion API."""

from __future__ import annotations

from typing import Annotated

from servicekit.identity import Principal, Role, require_roles

#: A citizen (their own things) or staff (everyone's).
CitizenOrStaff = Annotated[Principal, require_roles(Role.CITIZEN, Role.STAFF, Role.ADMIN)]
