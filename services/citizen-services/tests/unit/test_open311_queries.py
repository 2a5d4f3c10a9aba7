"""application/open311.py on fake repositories: what an Open311 partner may read."""

from __future__ import annotations

import uuid
from datetime import timedelta

from citizen_services.application import open311
from citizen_services.persistence.tables import ServiceRequestUpdate

from .fakes import NOW, FakeCatalogue, FakeRequests, make_request, make_service

REPORTABLE = make_service("Fly-tipping", attributes=[{"code": "waste_type"}])
INFORMATION = make_service("Council tax")
DRAFT = make_service("Graffiti", status="draft", attributes=[{"code": "where"}])


async def test_only_published_services_with_attributes_take_reports() -> None:
    entries = FakeCatalogue([REPORTABLE, INFORMATION, DRAFT])
    assert await open311.reportable_services(entries=entries) == [REPORTABLE]
    assert (
        await open311.reportable_service(entries=entries, code=REPORTABLE.service_code)
        is REPORTABLE
    )
    for other in (INFORMATION, DRAFT):
        assert await open311.reportable_service(entries=entries, code=other.service_code) is None


async def test_service_names_by_code() -> None:
    entries = FakeCatalogue([REPORTABLE, INFORMATION])
    assert await open311.service_names(entries=entries, codes=set()) == {}
    assert await open311.service_names(entries=entries, codes={"fly-tipping"}) == {
        "fly-tipping": "Fly-tipping"
    }


async def test_without_dates_the_last_90_days_of_public_requests() -> None:
    recent = make_request(public=True, created_at=NOW - timedelta(days=10))
    old = make_request(public=True, created_at=NOW - timedelta(days=100))
    private = make_request(public=False, created_at=NOW - timedelta(days=1))
    service_requests = FakeRequests([recent, old, private])
    found = await open311.find_requests(
        service_requests=service_requests, query=open311.RequestQuery(), now=NOW
    )
    assert found == [recent]
    found = await open311.find_requests(
        service_requests=service_requests,
        now=NOW,
        query=open311.RequestQuery(start=NOW - timedelta(days=200)),
    )
    assert found == [recent, old]


async def test_ids_override_every_other_filter_and_odd_ids_match_nothing() -> None:
    old = make_request(public=True, created_at=NOW - timedelta(days=400), status="fixed")
    private = make_request(public=False)
    service_requests = FakeRequests([old, private])
    query = open311.RequestQuery(
        ids=(str(old.id), str(private.id), "not-a-uuid"),
        statuses=("open",),
        service_codes=("other",),
    )
    assert await open311.find_requests(service_requests=service_requests, query=query, now=NOW) == [
        old
    ]
    assert (
        await open311.find_requests(
            service_requests=service_requests, now=NOW, query=open311.RequestQuery(ids=("nope",))
        )
        == []
    )


async def test_open_and_closed_stand_for_the_extended_statuses() -> None:
    fixed = make_request(public=True, status="fixed")
    in_progress = make_request(public=True, status="in_progress")
    service_requests = FakeRequests([fixed, in_progress])
    closed = await open311.find_requests(
        service_requests=service_requests, now=NOW, query=open311.RequestQuery(statuses=("closed",))
    )
    assert closed == [fixed]
    both = await open311.find_requests(
        service_requests=service_requests,
        now=NOW,
        query=open311.RequestQuery(statuses=("open", "closed")),
    )
    assert {r.id for r in both} == {fixed.id, in_progress.id}


async def test_one_request_only_if_public() -> None:
    public = make_request(public=True)
    private = make_request(public=False)
    service_requests = FakeRequests([public, private])
    assert (
        await open311.public_request(service_requests=service_requests, request_id=str(public.id))
        is public
    )
    for request_id in (str(private.id), str(uuid.uuid4()), "token-123"):
        assert (
            await open311.public_request(service_requests=service_requests, request_id=request_id)
            is None
        )


def _update(
    request_id: uuid.UUID, status: str, previous: str | None, *, days_ago: int = 1, **fields: object
) -> ServiceRequestUpdate:
    return ServiceRequestUpdate(
        request_id=request_id,
        status=status,
        previous_status=previous,
        occurred_at=NOW - timedelta(days=days_ago),
        **fields,
    )


async def test_the_newest_public_note_of_each_request() -> None:
    request = make_request(public=True)
    service_requests = FakeRequests(
        [request],
        [
            _update(request.id, "open", "open", note="First", note_visibility="public"),
            _update(request.id, "open", "open", note="Second", note_visibility="public"),
            _update(request.id, "open", "open", note="Internal", note_visibility="internal"),
        ],
    )
    assert await open311.latest_notes(service_requests=service_requests, request_ids=[]) == {}
    assert await open311.latest_notes(
        service_requests=service_requests, request_ids=[request.id]
    ) == {request.id: "Second"}


async def test_updates_default_to_the_last_90_days_of_public_changes() -> None:
    public = make_request(public=True)
    private = make_request(public=False)
    service_requests = FakeRequests(
        [public, private],
        [
            _update(public.id, "open", None),  # the submission
            _update(public.id, "fixed", "open", days_ago=2),
            _update(public.id, "fixed", "fixed", days_ago=120),
            _update(private.id, "fixed", "open"),
        ],
    )
    changes = await open311.find_updates(
        service_requests=service_requests, start=None, end=None, now=NOW
    )
    assert [(u.request_id, u.status) for u in changes] == [(public.id, "fixed")]


async def test_an_internal_note_on_a_status_change_is_not_shown() -> None:
    public = make_request(public=True)
    internal = _update(
        public.id, "fixed", "open", note="Reporter is a pest", note_visibility="internal"
    )
    shown = _update(public.id, "closed", "fixed", note="Done", note_visibility="public")
    service_requests = FakeRequests([public], [internal, shown])
    changes = await open311.find_updates(
        service_requests=service_requests, start=None, end=None, now=NOW
    )
    assert [(u.status, u.note) for u in changes] == [("fixed", None), ("closed", "Done")]
    assert internal.note == "Reporter is a pest"  # the row itself is untouched
