"""Catalogue entries and their lifecycle: draft -> published -> suspended -> retired."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from servicekit.errors import Conflict, DomainError


class ServiceStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    SUSPENDED = "suspended"
    RETIRED = "retired"


#: Allowed transitions: target -> states it may be reached from.
TRANSITIONS: dict[ServiceStatus, frozenset[ServiceStatus]] = {
    ServiceStatus.PUBLISHED: frozenset({ServiceStatus.DRAFT, ServiceStatus.SUSPENDED}),
    ServiceStatus.SUSPENDED: frozenset({ServiceStatus.PUBLISHED}),
    ServiceStatus.RETIRED: frozenset(
        {ServiceStatus.DRAFT, ServiceStatus.PUBLISHED, ServiceStatus.SUSPENDED}
    ),
}


class InvalidTransition(Conflict):
    code, title = "invalid-status-transition", "Status change not allowed"


class DuplicateService(Conflict):
    code, title = "duplicate-service", "Service already exists"


class InvalidServiceData(DomainError):
    status, code, title = 422, "invalid-service", "Invalid service"


def check_transition(current: str, target: ServiceStatus) -> None:
    if ServiceStatus(current) not in TRANSITIONS.get(target, frozenset()):
        raise InvalidTransition(
            f"A {current} service cannot become {target.value}.",
            current_status=current,
            requested_status=target.value,
        )


_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG.sub("-", ascii_text.lower())[:120].strip("-") or "service"
