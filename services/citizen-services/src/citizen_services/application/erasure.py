"""UK GDPR erasure of a citizen's service requests (``CitizenErasureRequested``, consumed
once per event through the inbox; running it again changes nothing).

What goes: the citizen's subject id, their contact details (and the consent to keep them),
the description, the address, the photo, the answers to the service's questions, staff's
notes on the request and the subject in this service's outbox. What stays, as the public
record of the problem: the service, the status and its history (times, statuses, who of
the staff), and the location rounded to 3 decimal places (about 100 m).

Requests the citizen made without signing in (Open311, an anonymous form) carry no subject
id and are not found: the event names the citizen by subject id only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from citizen_services.persistence.outbox import OutboxRepository
from citizen_services.persistence.requests import RequestRepository
from contracts.privacy import CitizenErasureRequested
from servicekit.messaging.consumer import MessageContext

#: Location precision kept: 3 decimal places, about 110 m of latitude.
COARSE_DECIMALS = 3
#: Keys of the outbox payloads that hold a request's free text or exact place.
FREE_TEXT_KEYS = ("address", "note", "description")


def coarse(value: float | None) -> float | None:
    return None if value is None else round(value, COARSE_DECIMALS)


async def erase_citizen(event: CitizenErasureRequested, ctx: MessageContext) -> None:
    await erase(
        service_requests=RequestRepository(ctx.uow.db),
        outbox=OutboxRepository(ctx.uow.db),
        citizen_id=event.citizen_id,
    )


async def erase(
    *, service_requests: RequestRepository, outbox: OutboxRepository, citizen_id: str
) -> int:
    """Redact the citizen's requests in the repositories' transaction; returns how many."""
    now = datetime.now(UTC)
    requests = await service_requests.of_citizen(citizen_id)
    ids = [r.id for r in requests]
    for request in requests:
        request.citizen_id = None
        request.contact, request.contact_consent = None, False
        request.description, request.address, request.media_url = "", None, None
        request.attributes, request.extra_attributes = {}, None
        request.lat, request.long = coarse(request.lat), coarse(request.long)
        request.version += 1
        request.updated_at = now
    if ids:
        await service_requests.clear_notes(ids)
    await service_requests.forget_actor(citizen_id)
    await _scrub_outbox(outbox, citizen_id)
    return len(ids)


def _scrub(value: Any, subject: str) -> Any:
    if isinstance(value, dict):
        if subject in value.values():  # the citizen's event: its free text and place go too
            value = {
                k: (
                    None
                    if k in FREE_TEXT_KEYS
                    else coarse(v)
                    if k in ("lat", "long") and isinstance(v, float)
                    else v
                )
                for k, v in value.items()
            }
        return {k: _scrub(v, subject) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, subject) for v in value if v != subject]
    return None if value == subject else value


async def _scrub_outbox(outbox: OutboxRepository, subject: str) -> None:
    """Published rows are kept a while for the relay; none may keep the subject."""
    for row_id, payload in await outbox.payloads_naming(subject):
        await outbox.set_payload(
            row_id, json.dumps(_scrub(json.loads(payload), subject), separators=(",", ":"))
        )
