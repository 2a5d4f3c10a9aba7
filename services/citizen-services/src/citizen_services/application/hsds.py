"""The catalogue as Open Referral UK / HSDS 3.0 records (queries only: no unit of work).

HSDS has organizations, locations, services at locations and taxonomies; the catalogue has
entries. Every HSDS record is derived from published entries, with deterministic ids (uuid5
in :data:`NAMESPACE`), so a directory tool sees the same id on every read and on every
instance:

- organization: Milton Keynes City Council (``organization:mkcc``) and one child
  organization per owning ``department`` (``organization:<department>``);
- location: one per distinct in-person ``channels.venue`` (``location:<venue>``);
- service_at_location: an entry offering a venue, at that venue;
- taxonomies: "esdStandards LGSL" (the entry's ``lgsl_codes``) and the local taxonomy of
  catalogue ``groups``; a term's id is uuid5 of ``lgsl:<code>`` / ``group:<name>``.

Lists of services use ``application/search.py`` (the same full text and JSON filters as the
citizen search, one count and one page query); organizations, locations and taxonomy terms
are few, so they are derived from one narrow query over the published entries.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from citizen_services.application import search
from citizen_services.domain import geo
from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.tables import CatalogueService
from servicekit.errors import NotFound

NAMESPACE = uuid.UUID("5d0f4f0e-93b7-4a3e-8c55-0c6f2b7e1a11")
COUNCIL_NAME = "Milton Keynes City Council"
COUNCIL_WEBSITE = "https://www.milton-keynes.gov.uk"
LGSL_TAXONOMY = "esdStandards LGSL"
LGSL_LIST_URI = "https://standards.esd.org.uk/?uri=list%2FenglishAndWelshServices"
GROUP_TAXONOMY = "Milton Keynes service groups"
#: UK postcode at the end of a venue ("…, Milton Keynes MK9 3EJ").
_POSTCODE = re.compile(r"\s*([A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})$", re.IGNORECASE)


def hsds_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{kind}:{key}")


COUNCIL_ID = hsds_id("organization", "mkcc")
LGSL_TAXONOMY_ID = hsds_id("taxonomy", "esd-lgsl")
GROUP_TAXONOMY_ID = hsds_id("taxonomy", "mk-groups")


class HsdsNotFound(NotFound):
    code, title = "hsds-not-found", "Not found"


@dataclass(frozen=True)
class Paging:
    page: int = 1
    per_page: int = 50


#: HSDS ``byday`` codes, Monday first.
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Read all matching entries, then filter and page here (filters on derived records).
_EVERYTHING = 100_000


@dataclass(frozen=True)
class ListServices:
    """The filters of ``/services`` and ``/service_at_locations`` (HSDS 3.0 and Open Referral
    UK). ``text`` and ``taxonomy_term_id`` run in the database search; the others are tests
    on the derived records (:meth:`filters_in_python`), so a filtered list reads every
    matching published entry in one query and pages here: fine for a council's catalogue
    (a few hundred entries)."""

    text: str | None = None
    taxonomy_term_id: str | None = None
    taxonomy_id: str | None = None
    organization_id: str | None = None
    modified_after: datetime | None = None
    #: An MK postcode or district (checked by the caller: :func:`geo.outward_code`).
    postcode: str | None = None
    #: Metres from the postcode district's centroid.
    proximity: float | None = None
    day: str | None = None  # one of DAYS
    #: Open Referral UK: services whose minimum age is at least this / whose maximum age is
    #: at most this (ages read from the eligibility text: :func:`age_limits`).
    minimum_age: float | None = None
    maximum_age: float | None = None
    start_time: time | None = None
    end_time: time | None = None
    paging: Paging = Paging()
    at_venue_only: bool = False

    def filters_in_python(self) -> bool:
        return any(
            v is not None
            for v in (
                self.taxonomy_id,
                self.organization_id,
                self.modified_after,
                self.postcode,
                self.day,
                self.start_time,
                self.end_time,
                self.minimum_age,
                self.maximum_age,
            )
        )


def page(contents: list[dict[str, Any]], *, total: int, paging: Paging) -> dict[str, Any]:
    """Open Referral's page wrapper (the ``Page`` schema) around one page of records."""
    total_pages = math.ceil(total / paging.per_page) if total else 0
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": paging.page,
        "size": len(contents),
        "first_page": paging.page == 1,
        "last_page": paging.page >= total_pages,
        "empty": not contents,
        "contents": contents,
    }


def _slice(items: list[dict[str, Any]], paging: Paging) -> dict[str, Any]:
    start = (paging.page - 1) * paging.per_page
    return page(items[start : start + paging.per_page], total=len(items), paging=paging)


def _parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        return None


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def compact(value: Any) -> Any:
    """A record without its empty optional fields: HSDS 3.0 and Open Referral UK type them
    (string, number, uri, ...) and allow them to be absent, never ``null``. Lists stay, even
    empty (``[]`` is a valid empty collection)."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


# --- organizations -------------------------------------------------------------------------


def organization_id(department: str | None) -> uuid.UUID:
    return hsds_id("organization", department) if department else COUNCIL_ID


def _council() -> dict[str, Any]:
    return compact(
        {
            "id": str(COUNCIL_ID),
            "name": COUNCIL_NAME,
            "alternate_name": "MKCC",
            "description": "The unitary local authority for the City of Milton Keynes.",
            "email": None,
            "website": COUNCIL_WEBSITE,
            "logo": None,
            "uri": None,
            "parent_organization_id": None,
        }
    )


def _department(name: str) -> dict[str, Any]:
    return compact(
        {
            "id": str(organization_id(name)),
            "name": name,
            "alternate_name": None,
            "description": f"{name}, a department of {COUNCIL_NAME}.",
            "email": None,
            "website": COUNCIL_WEBSITE,
            "logo": None,
            "uri": None,
            "parent_organization_id": str(COUNCIL_ID),
        }
    )


def _organization(department: str | None) -> dict[str, Any]:
    return _department(department) if department else _council()


# --- locations -----------------------------------------------------------------------------


def location_id(venue: str) -> uuid.UUID:
    return hsds_id("location", venue)


def _location(venue: str) -> dict[str, Any]:
    """A venue string ("Civic, 1 Saxon Gate East, Milton Keynes MK9 3EJ") as a physical
    location with one address: the first part names it, a trailing postcode is split off."""
    parts = [p.strip() for p in venue.split(",") if p.strip()]
    name = parts[0] if parts else venue
    postal_code = ""
    city = "Milton Keynes"
    lines = parts[1:]
    if lines:
        match = _POSTCODE.search(lines[-1])
        if match:
            postal_code = match.group(1).upper()
            city = lines[-1][: match.start()].strip() or city
            lines = lines[:-1]
    loc_id = location_id(venue)
    place = venue_district(venue)  # approximate: the postcode district's centroid
    return compact(
        {
            "id": str(loc_id),
            "location_type": "physical",
            "url": None,
            "organization_id": str(COUNCIL_ID),
            "name": name,
            "alternate_name": None,
            "description": venue,
            "transportation": None,
            "latitude": place.latitude if place else None,
            "longitude": place.longitude if place else None,
            "external_identifier": None,
            "external_identifier_type": None,
            "addresses": [
                {
                    "id": str(hsds_id("address", venue)),
                    "location_id": str(loc_id),
                    "attention": None,
                    "address_1": ", ".join(lines) or name,
                    "address_2": None,
                    "city": city,
                    "region": None,
                    "state_province": "Buckinghamshire",
                    "postal_code": postal_code,
                    "country": "GB",
                    "address_type": "physical",
                }
            ],
        }
    )


def service_at_location_id(service_id: uuid.UUID, venue: str) -> uuid.UUID:
    return hsds_id("service_at_location", f"{service_id}:{venue}")


# --- taxonomies ----------------------------------------------------------------------------


def lgsl_term_id(code: int) -> uuid.UUID:
    return hsds_id("lgsl", str(code))


def group_term_id(group: str) -> uuid.UUID:
    return hsds_id("group", group)


def _taxonomies() -> list[dict[str, Any]]:
    return compact(
        [
            {
                "id": str(LGSL_TAXONOMY_ID),
                "name": LGSL_TAXONOMY,
                "description": "The Local Government Service List (LGSL) of the esd standards "
                "(standards.esd.org.uk).",
                "uri": LGSL_LIST_URI,
                "version": None,
            },
            {
                "id": str(GROUP_TAXONOMY_ID),
                "name": GROUP_TAXONOMY,
                "description": "The groups Milton Keynes City Council files its services under.",
                "uri": None,
                "version": None,
            },
        ]
    )


def _lgsl_term(code: int) -> dict[str, Any]:
    return compact(
        {
            "id": str(lgsl_term_id(code)),
            "code": str(code),
            "name": f"LGSL {code}",
            "description": f"Local Government Service List service {code}.",
            "parent_id": None,
            "taxonomy": LGSL_TAXONOMY,
            "taxonomy_id": str(LGSL_TAXONOMY_ID),
            "language": "en",
            "term_uri": f"http://id.esd.org.uk/service/{code}",
        }
    )


def _group_term(group: str) -> dict[str, Any]:
    return compact(
        {
            "id": str(group_term_id(group)),
            "code": None,
            "name": group,
            "description": f"Council services filed under '{group}'.",
            "parent_id": None,
            "taxonomy": GROUP_TAXONOMY,
            "taxonomy_id": str(GROUP_TAXONOMY_ID),
            "language": "en",
            "term_uri": None,
        }
    )


# --- services ------------------------------------------------------------------------------


def _service_terms(row: CatalogueService) -> list[dict[str, Any]]:
    return [_lgsl_term(c) for c in row.lgsl_codes or []] + [
        _group_term(g) for g in row.groups or []
    ]


def service_record(row: CatalogueService, *, full: bool) -> dict[str, Any]:
    """One published entry as an HSDS service: one-to-one fields, and with ``full`` the
    nested organization, contacts/phones, schedules, services at locations and taxonomy
    terms (as HSDS 3.0 ``attributes``). Everything comes from the row: no further query."""
    channels = row.channels or {}
    ages = age_limits(row.eligibility or "")
    record: dict[str, Any] = {
        "id": str(row.id),
        "organization_id": str(organization_id(row.department)),
        "program_id": None,
        "name": row.name,
        "alternate_name": None,
        "description": row.description,
        "url": channels.get("online_url"),
        "email": channels.get("email"),
        "status": "active",
        "interpretation_services": None,
        "application_process": None,
        "fees_description": row.fees,
        "fees": row.fees,
        "wait_time": None,
        "accreditations": None,
        "eligibility_description": row.eligibility,
        "minimum_age": ages[0],
        "maximum_age": ages[1],
        "assured_date": _iso(row.last_reviewed_on),
        "assurer_email": None,
        "licenses": None,
        "alert": None,
        "last_modified": _iso(row.updated_at),
    }
    if not full:
        return compact(record)
    service_id = str(row.id)
    phones = []
    for kind, key in (("voice", "phone"), ("text", "sms")):
        if channels.get(key):
            phones.append(
                {
                    "id": str(hsds_id("phone", f"{row.id}:{key}")),
                    "contact_id": str(hsds_id("contact", service_id)),
                    "service_id": service_id,
                    "number": channels[key],
                    "extension": None,
                    "type": kind,
                    "description": "Text message" if key == "sms" else None,
                    "languages": [],
                }
            )
    contacts = []
    if phones or channels.get("email"):
        contacts.append(
            {
                "id": str(hsds_id("contact", service_id)),
                "service_id": service_id,
                "name": row.department or COUNCIL_NAME,
                "title": None,
                "department": row.department,
                "email": channels.get("email"),
                "phones": phones,
            }
        )
    schedules = []
    if row.opening_hours:
        for i, (days, opens, closes) in enumerate(opening_times(row.opening_hours)):
            schedules.append(
                {
                    "id": str(hsds_id("schedule", f"{service_id}:{i}")),
                    "service_id": service_id,
                    "freq": "WEEKLY",
                    "byday": ",".join(days),
                    "opens_at": opens.isoformat("minutes"),
                    "closes_at": closes.isoformat("minutes"),
                    "description": row.opening_hours,
                }
            )
        if not schedules:
            schedules.append(
                {
                    "id": str(hsds_id("schedule", service_id)),
                    "service_id": service_id,
                    "description": row.opening_hours,
                }
            )
    venue = channels.get("venue")
    at_locations = []
    if venue:
        at_locations.append(
            {
                "id": str(service_at_location_id(row.id, venue)),
                "service_id": service_id,
                "location_id": str(location_id(venue)),
                "description": None,
                "location": _location(venue),
            }
        )
    attributes = [
        {
            "id": str(hsds_id("attribute", f"{row.id}:{term['id']}")),
            "link_id": service_id,
            "link_type": "service_type"
            if term["taxonomy_id"] == str(LGSL_TAXONOMY_ID)
            else "service_category",
            "link_entity": "service",
            "taxonomy_term_id": term["id"],
            "value": None,
            "taxonomy_term": term,
        }
        for term in _service_terms(row)
    ]
    return compact(
        {
            **record,
            "organization": _organization(row.department),
            "contacts": contacts,
            "phones": phones,
            "schedules": schedules,
            "service_at_locations": at_locations,
            "service_areas": [],
            "languages": [],
            "funding": [],
            "cost_options": [],
            "required_documents": [],
            "attributes": attributes,
        }
    )


async def _vocabulary(
    entries: CatalogueRepository,
) -> tuple[set[str], set[int], set[str], set[str]]:
    """Departments, LGSL codes, groups and venues of the published entries."""
    departments: set[str] = set()
    codes: set[int] = set()
    groups: set[str] = set()
    venues: set[str] = set()
    for department, lgsl, grp, channels in await entries.published_facets():
        if department:
            departments.add(department)
        codes.update(lgsl or [])
        groups.update(grp or [])
        if (channels or {}).get("venue"):
            venues.add(channels["venue"])
    return departments, codes, groups, venues


async def list_services(
    *, entries: CatalogueRepository, query: ListServices, full: bool = False, minimal: bool = False
) -> dict[str, Any]:
    lgsl: int | None = None
    group: str | None = None
    if query.taxonomy_term_id is not None:
        # A term id is a uuid5: find which code or group it names among those in use.
        _, codes, groups, _ = await _vocabulary(entries)
        wanted = _parse_id(query.taxonomy_term_id)
        lgsl = next((c for c in codes if lgsl_term_id(c) == wanted), None)
        group = next((g for g in groups if group_term_id(g) == wanted), None)
        if lgsl is None and group is None:
            return page([], total=0, paging=query.paging)
    in_python = query.filters_in_python()
    rows, total = await search.search_services(
        entries=entries,
        query=search.SearchServices(
            q=query.text,
            group=group,
            lgsl=lgsl,
            channel=search.Channel.VENUE if query.at_venue_only else None,
            sort=search.Sort.RELEVANCE if query.text else search.Sort.NAME,
            page=1 if in_python else query.paging.page,
            size=_EVERYTHING if in_python else query.paging.per_page,
        ),
    )
    if in_python:
        rows = [r for r in rows if _wanted(r, query)]
        total = len(rows)
        start = (query.paging.page - 1) * query.paging.per_page
        rows = rows[start : start + query.paging.per_page]
    if minimal:
        # HSDS: "just id and modified date"; name and status too, as the list's schema
        # requires them.
        contents = [
            {
                "id": str(r.id),
                "name": r.name,
                "status": "active",
                "last_modified": _iso(r.updated_at),
            }
            for r in rows
        ]
        return page(contents, total=total, paging=query.paging)
    return page([service_record(r, full=full) for r in rows], total=total, paging=query.paging)


def opening_times(text: str) -> list[tuple[list[str], time, time]]:
    """Weekly opening times read from an entry's opening hours, for HSDS schedules and the
    ``day``/``start_time``/``end_time`` filters: "Monday to Friday 9am to 5pm" (also
    "Saturday 10:30am to 1pm", "9am-5pm"), and "24 hours a day" (every day, 00:00 to 23:59).
    Anything else gives nothing (the schedule keeps only its description)."""
    found: list[tuple[list[str], time, time]] = []
    if re.search(r"\b24 hours a day\b", text, re.IGNORECASE):
        found.append((list(DAYS), time(0, 0), time(23, 59)))
    for m in _OPENING.finditer(text):
        first = _DAY_NAMES.index(m["first"].lower())
        last = _DAY_NAMES.index(m["last"].lower()) if m["last"] else first
        days = [DAYS[d % 7] for d in range(first, last + 1 if last >= first else last + 8)]
        opens, closes = _clock(m["opens"]), _clock(m["closes"])
        if opens is not None and closes is not None:
            found.append((days, opens, closes))
    return found


_DAY = "(?:" + "|".join(_DAY_NAMES) + ")"
_CLOCK = r"\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm)"
_OPENING = re.compile(
    rf"(?P<first>{_DAY})(?:\s+(?:to|-)\s+(?P<last>{_DAY}))?,?\s+(?:from\s+)?"
    rf"(?P<opens>{_CLOCK})\s*(?:to|-)\s*(?P<closes>{_CLOCK})",
    re.IGNORECASE,
)


def _clock(text: str) -> time | None:
    m = re.fullmatch(r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)", text.strip(), re.IGNORECASE)
    if not m:
        return None
    hour, minute = int(m[1]), int(m[2] or 0)
    if not (1 <= hour <= 12 and minute < 60):
        return None
    hour = hour % 12 + (12 if m[3].lower() == "pm" else 0)
    return time(hour, minute)


_AGE_RANGE = re.compile(r"\baged\s+(\d{1,3})\s*(?:to|-|\u2013)\s*(\d{1,3})\b", re.IGNORECASE)
_AGE_FROM = re.compile(r"\baged\s+(\d{1,3})\s*(?:\+|or over\b|and over\b)", re.IGNORECASE)
_AGE_UNDER = re.compile(r"\b(?:aged\s+)?under\s+(\d{1,3})\b", re.IGNORECASE)


def age_limits(eligibility: str) -> tuple[int | None, int | None]:
    """(minimum_age, maximum_age) read from an entry's eligibility: "aged 11 to 19",
    "aged 18 or over" (or "18+"), "under 18" (maximum 17); (None, None) when it names no
    ages (the catalogue has no age fields: staff write who may use a service)."""
    if m := _AGE_RANGE.search(eligibility):
        low, high = int(m[1]), int(m[2])
        return (low, high) if low <= high else (None, None)
    if m := _AGE_FROM.search(eligibility):
        return int(m[1]), None
    if m := _AGE_UNDER.search(eligibility):
        return None, max(int(m[1]) - 1, 0)
    return None, None


def venue_district(venue: str) -> geo.District | None:
    """The MK postcode district of a venue's trailing postcode (its approximate place)."""
    match = _POSTCODE.search(venue)
    return geo.district_of(match.group(1)) if match else None


def _wanted(row: Any, query: ListServices) -> bool:
    """Whether a published entry passes the filters tested on its HSDS record."""
    if query.taxonomy_id is not None:
        wanted = _parse_id(query.taxonomy_id)
        if not (
            (wanted == LGSL_TAXONOMY_ID and row.lgsl_codes)
            or (wanted == GROUP_TAXONOMY_ID and row.groups)
        ):
            return False
    if query.organization_id is not None and organization_id(row.department) != _parse_id(
        query.organization_id
    ):
        return False
    if query.modified_after is not None:
        after = query.modified_after
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
        if updated < after:
            return False
    if query.postcode is not None and not _near(row, query.postcode, query.proximity):
        return False
    if query.minimum_age is not None or query.maximum_age is not None:
        low, high = age_limits(row.eligibility or "")
        if query.minimum_age is not None and (low is None or low < query.minimum_age):
            return False
        if query.maximum_age is not None and (high is None or high > query.maximum_age):
            return False
    if query.day or query.start_time or query.end_time:
        return any(
            (query.day is None or query.day in days)
            and (query.start_time is None or opens >= query.start_time)
            and (query.end_time is None or closes <= query.end_time)
            for days, opens, closes in opening_times(row.opening_hours or "")
        )
    return True


def _near(row: Any, postcode: str, proximity: float | None) -> bool:
    """Open Referral UK's ``postcode``: the council's services cover the City of Milton
    Keynes, so a postcode there finds them all and one elsewhere none; with ``proximity``
    (metres), only entries with a venue that near the postcode district's centroid."""
    district = geo.district_of(postcode)
    if district is None:
        return False
    if proximity is None:
        return district.in_milton_keynes
    venue = (row.channels or {}).get("venue")
    place = venue_district(venue) if venue else None
    if place is None:
        return False
    distance = geo.distance_m(
        district.latitude, district.longitude, place.latitude, place.longitude
    )
    return distance <= proximity


async def get_service(*, entries: CatalogueRepository, service_id: str) -> dict[str, Any]:
    wanted = _parse_id(service_id)
    row = await entries.get(wanted) if wanted else None
    if row is None or row.status != ServiceStatus.PUBLISHED.value:
        raise HsdsNotFound(f"No service with id {service_id}.")
    return service_record(row, full=True)


async def _with_services(
    entries: CatalogueRepository, organizations: list[dict[str, Any]], *, full: bool
) -> list[dict[str, Any]]:
    """Each organization with the published services it provides (``services``: their
    one-to-one fields, or fully nested with ``full``): one query for all."""
    rows, _ = await search.search_services(
        entries=entries, query=search.SearchServices(sort=search.Sort.NAME, size=_EVERYTHING)
    )
    provided: dict[str, list[Any]] = {}
    for row in rows:
        provided.setdefault(str(organization_id(row.department)), []).append(row)
    return [
        {**org, "services": [service_record(r, full=full) for r in provided.get(org["id"], [])]}
        for org in organizations
    ]


async def list_organizations(
    *,
    entries: CatalogueRepository,
    text: str | None,
    paging: Paging,
    full: bool = False,
    full_service: bool = False,
) -> dict[str, Any]:
    """Organizations; ``full``: each with its services' one-to-one fields, ``full_service``:
    with its services fully nested (HSDS 3.0's two parameters)."""
    departments, _, _, _ = await _vocabulary(entries)
    items = [_council()] + [_department(d) for d in sorted(departments)]
    body = _slice(_filter_text(items, text, "name", "description"), paging)
    if full or full_service:
        body["contents"] = await _with_services(entries, body["contents"], full=full_service)
    return body


async def get_organization(
    *, entries: CatalogueRepository, organization: str, full_service: bool = False
) -> dict[str, Any]:
    """An organization with the services it provides (``compiled/organization.json``):
    their one-to-one fields, or fully nested with ``full_service``."""
    wanted = _parse_id(organization)
    found = _council() if wanted == COUNCIL_ID else None
    if found is None:
        departments, _, _, _ = await _vocabulary(entries)
        found = next((_department(d) for d in departments if organization_id(d) == wanted), None)
    if found is None:
        raise HsdsNotFound(f"No organization with id {organization}.")
    [record] = await _with_services(entries, [found], full=full_service)
    return record


async def list_locations(
    *, entries: CatalogueRepository, text: str | None, paging: Paging
) -> dict[str, Any]:
    _, _, _, venues = await _vocabulary(entries)
    items = [_location(v) for v in sorted(venues)]
    return _slice(_filter_text(items, text, "name", "description"), paging)


async def get_location(*, entries: CatalogueRepository, location: str) -> dict[str, Any]:
    wanted = _parse_id(location)
    _, _, _, venues = await _vocabulary(entries)
    for venue in venues:
        if location_id(venue) == wanted:
            return _location(venue)
    raise HsdsNotFound(f"No location with id {location}.")


def _at_location(at: dict[str, Any], service: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """A service at a location (``at``: one of a full service's ``service_at_locations``).

    As a list item (``compiled/service_at_location_list.json``): its location and the
    service's one-to-one fields with its organization. ``full`` (a record,
    ``compiled/service_at_location.json``): the location and the fully nested service (less
    its own ``service_at_locations``); contacts, phones, schedules and attributes particular
    to this venue are none: the service's are on the service."""
    if not full:
        one_to_one = {k: v for k, v in service.items() if not isinstance(v, (list, dict))}
        return {**at, "service": {**one_to_one, "organization": service["organization"]}}
    nested = {k: v for k, v in service.items() if k != "service_at_locations"}
    return {
        **at,
        "contacts": [],
        "phones": [],
        "schedules": [],
        "attributes": [],
        "service": nested,
    }


async def list_services_at_locations(
    *, entries: CatalogueRepository, query: ListServices, full: bool = False
) -> dict[str, Any]:
    services = await list_services(
        entries=entries, query=dataclasses.replace(query, at_venue_only=True), full=True
    )
    contents = [
        _at_location(at, service, full=full)
        for service in services["contents"]
        for at in service["service_at_locations"]
    ]
    return {**services, "contents": contents, "size": len(contents)}


async def get_service_at_location(*, entries: CatalogueRepository, sal: str) -> dict[str, Any]:
    wanted = _parse_id(sal)
    if wanted is not None:
        for service_id, channels in await entries.published_channels():
            venue = (channels or {}).get("venue")
            if venue and service_at_location_id(service_id, venue) == wanted:
                service = await get_service(entries=entries, service_id=str(service_id))
                return _at_location(service["service_at_locations"][0], service, full=True)
    raise HsdsNotFound(f"No service_at_location with id {sal}.")


async def list_taxonomies(*, paging: Paging, text: str | None = None) -> dict[str, Any]:
    return _slice(_filter_text(_taxonomies(), text, "name", "description"), paging)


async def get_taxonomy(*, taxonomy: str) -> dict[str, Any]:
    wanted = _parse_id(taxonomy)
    for item in _taxonomies():
        if item["id"] == str(wanted):
            return item
    raise HsdsNotFound(f"No taxonomy with id {taxonomy}.")


async def _terms(entries: CatalogueRepository) -> list[dict[str, Any]]:
    _, codes, groups, _ = await _vocabulary(entries)
    return [_lgsl_term(c) for c in sorted(codes)] + [_group_term(g) for g in sorted(groups)]


async def list_taxonomy_terms(
    *,
    entries: CatalogueRepository,
    text: str | None,
    taxonomy_id: str | None,
    paging: Paging,
    top_only: bool = False,
    parent_id: str | None = None,
) -> dict[str, Any]:
    """Terms in use; ``top_only``: those without a parent, ``parent_id``: the children of
    that term (LGSL codes and groups are flat lists: every term is a top one)."""
    items = await _terms(entries)
    if taxonomy_id is not None:
        wanted = str(_parse_id(taxonomy_id))
        items = [t for t in items if t["taxonomy_id"] == wanted]
    if top_only:
        items = [t for t in items if "parent_id" not in t]
    if parent_id is not None:
        items = [t for t in items if t.get("parent_id") == str(_parse_id(parent_id))]
    return _slice(_filter_text(items, text, "name", "code", "description"), paging)


async def get_taxonomy_term(*, entries: CatalogueRepository, term: str) -> dict[str, Any]:
    wanted = str(_parse_id(term))
    for item in await _terms(entries):
        if item["id"] == wanted:
            return item
    raise HsdsNotFound(f"No taxonomy term with id {term}.")


def _filter_text(
    items: list[dict[str, Any]], text: str | None, *fields: str
) -> list[dict[str, Any]]:
    words = [w.lower() for w in re.findall(r"\w+", text or "")]
    if not words:
        return items
    return [
        item
        for item in items
        if all(any(w in str(item.get(f) or "").lower() for f in fields) for w in words)
    ]
