"""Events of the privacy context: platform-wide UK GDPR requests that every service acts on.

The context has no service of its own: whichever service takes a citizen's erasure request
publishes ``CitizenErasureRequested`` (today inclusion, for ``DELETE /api/v1/participants/me``
and staff's erasure on request), and every service that keeps anything about citizens
consumes it, idempotently (docs/security.md, "Erasure across the platform").

The citizen appears only by their opaque subject id: the one thing each service needs to
find what it keeps about them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import Field

from contracts.events import Event
from contracts.topics import CITIZEN_ERASURE


class CitizenErasureRequested(Event):
    """A citizen asked for their data to be erased (UK GDPR article 17). Each service
    erases or pseudonymises what it keeps about them, keeping counts and public facts."""

    context: ClassVar[str] = "privacy"
    topic: ClassVar[str] = CITIZEN_ERASURE.name
    aggregate_field: ClassVar[str] = "citizen_id"

    citizen_id: str = Field(
        min_length=1, description="Subject id of the citizen to forget (opaque; the aggregate id)."
    )
    erasure_id: uuid.UUID = Field(description="Id of this request, for the audit trail.")
    requested_by: str = Field(
        description="citizen (through their own account) or staff (on the citizen's request)."
    )
    occurred_at: datetime = Field(description="When the request was taken (UTC).")


#: Every event this context publishes (``contracts.all_events()`` combines the contexts).
EVENTS: tuple[type[Event], ...] = (CitizenErasureRequested,)
