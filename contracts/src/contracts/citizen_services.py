"""Events of the citizen-services context: the service catalogue and service requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from contracts.events import Event
from contracts.topics import CATALOGUE_SERVICE, SERVICE_REQUEST


class _CatalogueEvent(Event):
    context: ClassVar[str] = "citizen-services"
    topic: ClassVar[str] = CATALOGUE_SERVICE.name
    aggregate_field: ClassVar[str] = "service_id"

    service_id: uuid.UUID = Field(description="Catalogue entry id (the aggregate id).")
    service_code: str = Field(description="Open311 service_code.")
    slug: str
    name: str
    entry_version: int = Field(description="Version of the catalogue entry after the change.")
    occurred_at: datetime


class ServicePublished(_CatalogueEvent):
    """A catalogue entry became visible to citizens."""

    published_by: str | None = Field(default=None, description="Staff subject id, not a name.")


class ServiceUpdated(_CatalogueEvent):
    """A catalogue entry's details changed."""

    changed_fields: list[str] = Field(default_factory=list)
    updated_by: str | None = None


class ServiceSuspended(_CatalogueEvent):
    """A published entry was temporarily withdrawn."""

    reason: str | None = None
    suspended_by: str | None = None


class ServiceRetired(_CatalogueEvent):
    """An entry was permanently withdrawn."""

    reason: str | None = None
    retired_by: str | None = None


class _RequestEvent(Event):
    context: ClassVar[str] = "citizen-services"
    topic: ClassVar[str] = SERVICE_REQUEST.name
    aggregate_field: ClassVar[str] = "request_id"

    request_id: uuid.UUID
    service_code: str
    status: str
    occurred_at: datetime


class ServiceRequestSubmitted(_RequestEvent):
    """A citizen or partner reported a problem or asked for a service."""

    service_id: uuid.UUID
    citizen_id: str | None = Field(default=None, description="Subject id of the citizen, if any.")
    lat: float | None = None
    long: float | None = None
    address: str | None = None


class ServiceRequestStatusChanged(_RequestEvent):
    """Staff changed a service request's status (FixMyStreet's extended statuses included)."""

    previous_status: str
    citizen_id: str | None = None
    note: str | None = Field(
        default=None,
        description="The staff note that came with the change, if any. Show it "
        "to the reporter or a partner only when note_visibility is 'public'.",
    )
    note_visibility: Literal["public", "internal"] = Field(
        default="internal",
        description="Who may read note: 'public' (the reporter, Open311, "
        "partners) or 'internal' (council staff only). A record without this field (from "
        "before it existed) is internal.",
    )


#: Every event this context publishes (``contracts.all_events()`` combines the contexts).
EVENTS: tuple[type[Event], ...] = (
    ServicePublished,
    ServiceUpdated,
    ServiceSuspended,
    ServiceRetired,
    ServiceRequestSubmitted,
    ServiceRequestStatusChanged,
)
