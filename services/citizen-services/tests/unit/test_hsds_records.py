"""application/hsds.py on a fake repository: the catalogue as Open Referral UK records,
published entries only, without a database."""

from __future__ import annotations

import uuid

import pytest

from citizen_services.application import hsds

from .fakes import FakeCatalogue, make_service

VENUE = "Civic, 1 Saxon Gate East, Milton Keynes MK9 3EJ"
COUNCIL_TAX = make_service(
    "Pay your council tax",
    department="Revenues and Benefits",
    lgsl_codes=[57],
    groups=["Council tax and benefits"],
    opening_hours="9 to 5",
    channels={"online_url": "https://example.gov.uk/tax", "phone": "01908 252560", "venue": VENUE},
)
BINS = make_service("Bin collections", groups=["Bins and recycling"])
SECRET = make_service(
    "Secret",
    status="draft",
    department="Secret Unit",
    lgsl_codes=[99],
    channels={"venue": "Hidden Hall, MK1 1AA"},
)
PAGE = hsds.Paging(page=1, per_page=50)


@pytest.fixture
def entries() -> FakeCatalogue:
    return FakeCatalogue([COUNCIL_TAX, BINS, SECRET])


async def test_services_are_the_published_entries(entries: FakeCatalogue) -> None:
    body = await hsds.list_services(entries=entries, query=hsds.ListServices(paging=PAGE))
    assert [s["name"] for s in body["contents"]] == ["Bin collections", "Pay your council tax"]
    assert (body["total_items"], body["total_pages"], body["first_page"], body["last_page"]) == (
        2,
        1,
        True,
        True,
    )
    assert entries.searches[-1].sort is hsds.search.Sort.NAME


async def test_a_taxonomy_term_filters_by_its_code_or_group(entries: FakeCatalogue) -> None:
    term = str(hsds.lgsl_term_id(57))
    body = await hsds.list_services(
        entries=entries, query=hsds.ListServices(taxonomy_term_id=term, paging=PAGE)
    )
    assert [s["name"] for s in body["contents"]] == ["Pay your council tax"]
    assert entries.searches[-1].lgsl == 57
    hidden = str(hsds.lgsl_term_id(99))  # only a draft has it
    body = await hsds.list_services(
        entries=entries, query=hsds.ListServices(taxonomy_term_id=hidden, paging=PAGE)
    )
    assert body["empty"] and body["total_items"] == 0


async def test_one_service_is_fully_nested(entries: FakeCatalogue) -> None:
    record = await hsds.get_service(entries=entries, service_id=str(COUNCIL_TAX.id))
    assert record["organization"]["name"] == "Revenues and Benefits"
    assert [p["type"] for p in record["phones"]] == ["voice"]
    assert record["schedules"][0]["description"] == "9 to 5"
    assert record["service_at_locations"][0]["location"]["addresses"][0]["postal_code"] == (
        "MK9 3EJ"
    )
    assert {a["taxonomy_term"]["name"] for a in record["attributes"]} == {
        "LGSL 57",
        "Council tax and benefits",
    }
    for hidden in (str(SECRET.id), str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(hsds.HsdsNotFound):
            await hsds.get_service(entries=entries, service_id=hidden)


async def test_organizations_are_the_council_and_its_departments(entries: FakeCatalogue) -> None:
    body = await hsds.list_organizations(entries=entries, text=None, paging=PAGE)
    assert [o["name"] for o in body["contents"]] == [hsds.COUNCIL_NAME, "Revenues and Benefits"]
    department = await hsds.get_organization(
        entries=entries, organization=str(hsds.organization_id("Revenues and Benefits"))
    )
    assert department["parent_organization_id"] == str(hsds.COUNCIL_ID)
    assert (await hsds.get_organization(entries=entries, organization=str(hsds.COUNCIL_ID)))[
        "name"
    ] == hsds.COUNCIL_NAME
    with pytest.raises(hsds.HsdsNotFound):
        await hsds.get_organization(
            entries=entries, organization=str(hsds.organization_id("Secret Unit"))
        )
    body = await hsds.list_organizations(entries=entries, text="revenues", paging=PAGE)
    assert [o["name"] for o in body["contents"]] == ["Revenues and Benefits"]


async def test_locations_are_the_published_venues(entries: FakeCatalogue) -> None:
    body = await hsds.list_locations(entries=entries, text=None, paging=PAGE)
    assert [loc["name"] for loc in body["contents"]] == ["Civic"]
    location = await hsds.get_location(entries=entries, location=str(hsds.location_id(VENUE)))
    assert location["addresses"][0]["address_1"] == "1 Saxon Gate East"
    with pytest.raises(hsds.HsdsNotFound):
        await hsds.get_location(
            entries=entries, location=str(hsds.location_id("Hidden Hall, MK1 1AA"))
        )


async def test_services_at_locations(entries: FakeCatalogue) -> None:
    body = await hsds.list_services_at_locations(
        entries=entries, query=hsds.ListServices(paging=PAGE)
    )
    [at] = body["contents"]
    assert at["service"]["name"] == "Pay your council tax" and body["size"] == 1
    assert entries.searches[-1].channel is hsds.search.Channel.VENUE
    sal = str(hsds.service_at_location_id(COUNCIL_TAX.id, VENUE))
    one = await hsds.get_service_at_location(entries=entries, sal=sal)
    assert one["location_id"] == str(hsds.location_id(VENUE))
    with pytest.raises(hsds.HsdsNotFound):
        await hsds.get_service_at_location(
            entries=entries, sal=str(hsds.service_at_location_id(SECRET.id, "Hidden Hall, MK1 1AA"))
        )


async def test_taxonomies_and_their_terms_in_use(entries: FakeCatalogue) -> None:
    taxonomies = await hsds.list_taxonomies(paging=PAGE)
    assert taxonomies["total_items"] == 2
    assert (await hsds.get_taxonomy(taxonomy=str(hsds.LGSL_TAXONOMY_ID)))["name"] == (
        hsds.LGSL_TAXONOMY
    )
    terms = await hsds.list_taxonomy_terms(
        entries=entries, text=None, taxonomy_id=None, paging=PAGE
    )
    assert [t["name"] for t in terms["contents"]] == [
        "LGSL 57",
        "Bins and recycling",
        "Council tax and benefits",
    ]
    lgsl = await hsds.list_taxonomy_terms(
        entries=entries, text=None, paging=PAGE, taxonomy_id=str(hsds.LGSL_TAXONOMY_ID)
    )
    assert [t["code"] for t in lgsl["contents"]] == ["57"]
    with pytest.raises(hsds.HsdsNotFound):
        await hsds.get_taxonomy_term(entries=entries, term=str(hsds.lgsl_term_id(99)))


def test_a_page_past_the_end_is_empty() -> None:
    body = hsds.page([], total=3, paging=hsds.Paging(page=5, per_page=2))
    assert (body["total_pages"], body["empty"], body["last_page"]) == (2, True, True)


def test_opening_times_read_from_opening_hours() -> None:
    t = hsds.time
    assert hsds.opening_times("Monday to Friday 9am to 5pm") == [
        (["MO", "TU", "WE", "TH", "FR"], t(9, 0), t(17, 0))
    ]
    assert hsds.opening_times(
        "Online 24 hours a day; contact centre Monday to Friday 9am to 5pm"
    ) == [
        (list(hsds.DAYS), t(0, 0), t(23, 59)),
        (["MO", "TU", "WE", "TH", "FR"], t(9, 0), t(17, 0)),
    ]
    assert hsds.opening_times("Saturday 10:30am - 12pm, Friday to Monday 12am to 1.15pm") == [
        (["SA"], t(10, 30), t(12, 0)),
        (["FR", "SA", "SU", "MO"], t(0, 0), t(13, 15)),
    ]
    for vague in ("By appointment", "Monday 13pm to 5pm", "", "Weekdays 9 to 5"):
        assert hsds.opening_times(vague) == [], vague


def test_age_limits_read_from_eligibility() -> None:
    assert hsds.age_limits("Children aged 4 to 11 living in Milton Keynes.") == (4, 11)
    assert hsds.age_limits("Young people aged 11\u201319") == (11, 19)
    assert hsds.age_limits("Adults aged 18 or over") == (18, None)
    assert hsds.age_limits("Anyone aged 65+") == (65, None)
    assert hsds.age_limits("Disabled children under 18") == (None, 17)
    for vague in ("Residents of Milton Keynes.", "aged 19 to 11", "18 to 25", ""):
        assert hsds.age_limits(vague) == (None, None), vague
