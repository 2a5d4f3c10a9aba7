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
from datetime import UTC, date, datetime
from typing import Any

from citizen_services.application import search
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


@dataclass(frozen=True)
class ListServices:
    text: str | None = None
    taxonomy_term_id: str | None = None
    paging: Paging = Paging()
    at_venue_only: bool = False


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
            "latitude": None,
            "longitude": None,
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
        "minimum_age": None,
        "maximum_age": None,
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
    *, entries: CatalogueRepository, query: ListServices, full: bool = False
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
    rows, total = await search.search_services(
        entries=entries,
        query=search.SearchServices(
            q=query.text,
            group=group,
            lgsl=lgsl,
            channel=search.Channel.VENUE if query.at_venue_only else None,
            sort=search.Sort.RELEVANCE if query.text else search.Sort.NAME,
            page=query.paging.page,
            size=query.paging.per_page,
        ),
    )
    return page([service_record(r, full=full) for r in rows], total=total, paging=query.paging)


async def get_service(*, entries: CatalogueRepository, service_id: str) -> dict[str, Any]:
    wanted = _parse_id(service_id)
    row = await entries.get(wanted) if wanted else None
    if row is None or row.status != ServiceStatus.PUBLISHED.value:
        raise HsdsNotFound(f"No service with id {service_id}.")
    return service_record(row, full=True)


async def list_organizations(
    *, entries: CatalogueRepository, text: str | None, paging: Paging
) -> dict[str, Any]:
    departments, _, _, _ = await _vocabulary(entries)
    items = [_council()] + [_department(d) for d in sorted(departments)]
    return _slice(_filter_text(items, text, "name", "description"), paging)


async def get_organization(*, entries: CatalogueRepository, organization: str) -> dict[str, Any]:
    wanted = _parse_id(organization)
    if wanted == COUNCIL_ID:
        return _council()
    departments, _, _, _ = await _vocabulary(entries)
    for department in departments:
        if organization_id(department) == wanted:
            return _department(department)
    raise HsdsNotFound(f"No organization with id {organization}.")


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


async def list_taxonomies(*, paging: Paging) -> dict[str, Any]:
    return _slice(_taxonomies(), paging)


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
    *, entries: CatalogueRepository, text: str | None, taxonomy_id: str | None, paging: Paging
) -> dict[str, Any]:
    items = await _terms(entries)
    if taxonomy_id is not None:
        wanted = str(_parse_id(taxonomy_id))
        items = [t for t in items if t["taxonomy_id"] == wanted]
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
