"""Service requests: where they may be, what their attributes must be, which statuses exist,
and what of them is public.

**Public or private.** A request that arrived through Open311 is public (the spec expects
reports to be readable by anyone); one a citizen reported through the platform's own API is
private unless they chose ``public``. Open311's reads show public requests only. Staff notes
are internal unless marked public (:class:`NoteVisibility`).

The Milton Keynes area is the bounding box of the unitary authority, a little generous at the
edges: latitude 51.95..52.20, longitude -0.95..-0.55 (WGS84). A report outside it is refused;
the council's own GIS decides the finer boundary when the request is worked.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from servicekit.errors import DomainError

MK_BOUNDS = {"min_lat": 51.95, "max_lat": 52.20, "min_long": -0.95, "max_long": -0.55}
MAX_DESCRIPTION = 4000
#: What an attribute a service does not define may look like, when it is kept (Open311).
_EXTRA_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_EXTRA_VALUE = 1000


class RequestStatus(StrEnum):
    """Open311's open/closed plus FixMyStreet's extended statuses."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    ACTION_SCHEDULED = "action_scheduled"
    IN_PROGRESS = "in_progress"
    FIXED = "fixed"
    DUPLICATE = "duplicate"
    NOT_COUNCILS_RESPONSIBILITY = "not_councils_responsibility"
    NO_FURTHER_ACTION = "no_further_action"
    INTERNAL_REFERRAL = "internal_referral"
    CLOSED = "closed"


#: FixMyStreet's extended statuses that Open311 (which knows only open/closed) calls closed.
CLOSED_STATUSES = frozenset(
    {
        RequestStatus.FIXED,
        RequestStatus.DUPLICATE,
        RequestStatus.NOT_COUNCILS_RESPONSIBILITY,
        RequestStatus.NO_FURTHER_ACTION,
        RequestStatus.INTERNAL_REFERRAL,
        RequestStatus.CLOSED,
    }
)


def open311_status(status: str) -> str:
    """Open311's ``open`` or ``closed`` for an internal (FixMyStreet extended) status."""
    return "closed" if status in CLOSED_STATUSES else "open"


def statuses_for(open311: str) -> list[str]:
    """The internal statuses Open311's ``open`` or ``closed`` stands for."""
    return [s.value for s in RequestStatus if open311_status(s.value) == open311]


class NoteVisibility(StrEnum):
    """Who may read a staff note. ``internal`` (the default) is for staff only: never on
    Open311, in the citizen's own timeline or in a message to them. ``public`` is shown to
    the reporter and, on a public request, on Open311."""

    PUBLIC = "public"
    INTERNAL = "internal"


def is_public_note(note: str | None, visibility: str | None) -> bool:
    """Whether a note may be shown outside the council: only one marked public (a note
    without a visibility, from before migration 0007, is internal)."""
    return bool(note) and visibility == NoteVisibility.PUBLIC.value


def shown_outside(
    *, status: str, previous_status: str | None, note: str | None, note_visibility: str | None
) -> bool:
    """Whether an update belongs in a public timeline (Open311's updates, the citizen's
    own): a status change, or a public note. Not assignment-only changes, and not an
    update whose only content is an internal note."""
    return (previous_status is not None and status != previous_status) or is_public_note(
        note, note_visibility
    )


class InvalidRequest(DomainError):
    status, code, title = 422, "invalid-service-request", "Invalid service request"


class ServiceNotReportable(DomainError):
    status, code, title = 422, "service-not-reportable", "This service takes no reports"


def check_location(*, lat: float | None, long: float | None, address: str | None) -> None:
    if (lat is None) != (long is None):
        raise InvalidRequest(
            "Send both lat and long, or neither.",
            errors=[
                {"field": "lat" if lat is None else "long", "message": "lat and long go together"}
            ],
        )
    if lat is None and not address:
        raise InvalidRequest(
            "Send a location: lat and long, or an address.",
            errors=[{"field": "lat", "message": "a location is required"}],
        )
    if (
        lat is not None
        and long is not None
        and not (
            MK_BOUNDS["min_lat"] <= lat <= MK_BOUNDS["max_lat"]
            and MK_BOUNDS["min_long"] <= long <= MK_BOUNDS["max_long"]
        )
    ):
        raise InvalidRequest(
            "The location is outside Milton Keynes.",
            errors=[{"field": "lat", "message": "outside the Milton Keynes area"}],
            bounds=MK_BOUNDS,
        )


def check_attributes(definitions: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """Validate ``values`` against the service's Open311 attribute definitions; returns them
    normalised (numbers as numbers, lists as lists). Every problem is named."""
    by_code = {d["code"]: d for d in definitions}
    errors = [
        {"field": f"attributes.{code}", "message": "not an attribute of this service"}
        for code in values
        if code not in by_code
    ]
    out: dict[str, Any] = {}
    for code, definition in by_code.items():
        field = f"attributes.{code}"
        value = values.get(code)
        if value is None or value == "" or value == []:
            if definition.get("required") and definition.get("variable", True):
                errors.append({"field": field, "message": "required"})
            continue
        datatype = definition.get("datatype", "string")
        keys = {v["key"] for v in definition.get("values") or []}
        problem = None
        if datatype == "multivaluelist":
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(i, str) and i in keys for i in items):
                problem = f"each value must be one of {sorted(keys)}"
            value = items
        elif isinstance(value, list):
            problem = "one value expected"
        elif datatype == "singlevaluelist":
            if str(value) not in keys:
                problem = f"must be one of {sorted(keys)}"
            value = str(value)
        elif datatype == "number":
            try:
                value = float(value)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError
            except (TypeError, ValueError):
                problem = "must be a number"
        elif datatype == "datetime":
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                value = str(value)
            except ValueError:
                problem = "must be an ISO 8601 date and time"
        else:
            value = str(value)
            if len(value) > (4000 if datatype == "text" else 1000):
                problem = "too long"
        if problem:
            errors.append({"field": field, "message": problem})
        else:
            out[code] = value
    if errors:
        raise InvalidRequest("Some attributes are not valid for this service.", errors=errors)
    return out


def split_attributes(
    definitions: list[dict[str, Any]], values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``values`` as (those the service defines, those it does not)."""
    codes = {d["code"] for d in definitions}
    defined = {k: v for k, v in values.items() if k in codes}
    return defined, {k: v for k, v in values.items() if k not in codes}


def check_extra_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Attributes a service does not define, kept as an Open311 client sent them
    (FixMyStreet always sends ``uprn``, ``fixmystreet_id``, ``easting``/``northing``,
    ``closest_address``...): a code of letters, digits, '.', '_' and '-', a value of at
    most :data:`MAX_EXTRA_VALUE` characters (or a list of such); empty ones are dropped."""
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    for code, value in values.items():
        field = f"attributes.{code}"
        items = value if isinstance(value, list) else [value]
        texts = [i if isinstance(i, str) else format(i, "g") for i in items]
        if not _EXTRA_CODE.match(code):
            errors.append({"field": "attributes", "message": "a code is letters, digits, .-_"})
        elif any(len(t) > MAX_EXTRA_VALUE for t in texts):
            errors.append({"field": field, "message": "too long"})
        elif any(t != "" for t in texts):
            out[code] = texts if isinstance(value, list) else texts[0]
    if errors:
        raise InvalidRequest("Some attributes are not valid.", errors=errors)
    return out
