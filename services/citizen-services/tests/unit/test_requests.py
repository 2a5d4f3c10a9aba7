"""application/requests.py on fake repositories: submitting and working requests, and what
a citizen sees of them, without a database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from citizen_services.application import requests
from citizen_services.domain.requests import (
    InvalidRequest,
    NoteVisibility,
    RequestStatus,
    ServiceNotReportable,
)
from citizen_services.persistence.tables import ServiceRequestUpdate
from contracts.citizen_services import ServiceRequestStatusChanged, ServiceRequestSubmitted

from .fakes import NOW, FakeCatalogue, FakeRequests, FakeUnitOfWork, make_request, make_service

FLY_TIPPING = make_service(
    "Fly-tipping",
    attributes=[
        {
            "code": "waste_type",
            "datatype": "string",
            "required": False,
            "order": 1,
            "description": "What was dumped",
        }
    ],
)
STAFF = requests.Viewer(staff=True, subject="staff-1")
CITIZEN = requests.Viewer(staff=False, subject="citizen-1")


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


def _submit(**fields: object) -> requests.SubmitRequest:
    values: dict[str, object] = {
        "service_code": FLY_TIPPING.service_code,
        "lat": 52.04,
        "long": -0.76,
        "description": "A sofa",
        "citizen_id": "citizen-1",
    }
    values.update(fields)
    return requests.SubmitRequest(**values)  # type: ignore[arg-type]


async def test_a_report_is_open_with_its_first_update_and_the_event(uow: FakeUnitOfWork) -> None:
    service_requests = FakeRequests()
    request = await requests.submit_request(
        uow=uow,
        entries=FakeCatalogue([FLY_TIPPING]),
        service_requests=service_requests,
        command=_submit(attributes={"waste_type": "sofa"}),
    )
    assert request.status == "open" and request.service_id == FLY_TIPPING.id
    assert request.attributes == {"waste_type": "sofa"} and not request.public
    assert service_requests.requests == {request.id: request}
    [update] = service_requests.update_rows
    assert (update.status, update.previous_status, update.actor) == ("open", None, "citizen-1")
    [event] = uow.events
    assert isinstance(event, ServiceRequestSubmitted) and event.request_id == request.id


async def test_a_partner_s_report_names_who_submitted_it(uow: FakeUnitOfWork) -> None:
    service_requests = FakeRequests()
    await requests.submit_request(
        uow=uow,
        entries=FakeCatalogue([FLY_TIPPING]),
        service_requests=service_requests,
        command=_submit(citizen_id=None, submitted_by="partner-key", public=True),
    )
    assert service_requests.update_rows[0].actor == "partner-key"


@pytest.mark.parametrize(
    ("service", "error"),
    [
        (None, InvalidRequest),
        (make_service("Fly-tipping", status="draft", attributes=[{"code": "x"}]), InvalidRequest),
        (make_service("Fly-tipping"), ServiceNotReportable),  # no attributes: takes no reports
    ],
)
async def test_only_a_published_reportable_service_takes_reports(
    uow: FakeUnitOfWork, service: object, error: type[Exception]
) -> None:
    entries = FakeCatalogue([service] if service else [])  # type: ignore[list-item]
    with pytest.raises(error):
        await requests.submit_request(
            uow=uow, entries=entries, service_requests=FakeRequests(), command=_submit()
        )
    assert uow.events == []


async def test_contact_details_need_consent(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await requests.submit_request(
            uow=uow,
            entries=FakeCatalogue([FLY_TIPPING]),
            service_requests=FakeRequests(),
            command=_submit(contact={"email": "a@example.com"}),
        )
    assert caught.value.extensions["errors"][0]["field"] == "contact_consent"


async def test_a_status_change_is_an_update_and_an_event(uow: FakeUnitOfWork) -> None:
    request = make_request(service=FLY_TIPPING, citizen_id="citizen-1")
    service_requests = FakeRequests([request])
    changed = await requests.update_request(
        uow=uow,
        service_requests=service_requests,
        command=requests.UpdateRequest(
            request_id=request.id,
            status=RequestStatus.FIXED,
            note="Cleared",
            note_visibility=NoteVisibility.PUBLIC,
            actor="staff-1",
        ),
    )
    assert changed.status == "fixed" and changed.version == 2
    assert service_requests.locked == [request.id]
    [update] = service_requests.update_rows
    assert (update.previous_status, update.note_visibility) == ("open", "public")
    [event] = uow.events
    assert isinstance(event, ServiceRequestStatusChanged)
    assert (event.previous_status, event.note_visibility) == ("open", "public")


async def test_an_assignment_alone_is_no_event(uow: FakeUnitOfWork) -> None:
    request = make_request(service=FLY_TIPPING)
    service_requests = FakeRequests([request])
    changed = await requests.update_request(
        uow=uow,
        service_requests=service_requests,
        command=requests.UpdateRequest(request_id=request.id, assigned_to="staff-9"),
    )
    assert changed.assigned_to == "staff-9" and uow.events == []
    assert service_requests.update_rows[0].note_visibility is None
    await requests.update_request(
        uow=uow,
        service_requests=service_requests,
        command=requests.UpdateRequest(request_id=request.id, assigned_to=""),
    )
    assert request.assigned_to is None  # empty unassigns


async def test_updating_an_unknown_request_is_not_found(uow: FakeUnitOfWork) -> None:
    with pytest.raises(requests.RequestNotFound):
        await requests.update_request(
            uow=uow,
            service_requests=FakeRequests(),
            command=requests.UpdateRequest(request_id=uuid.uuid4(), note="x"),
        )


async def test_a_citizen_reads_only_their_own_without_its_assignment() -> None:
    mine = make_request(citizen_id="citizen-1", assigned_to="staff-9")
    theirs = make_request(citizen_id="citizen-2")
    service_requests = FakeRequests([mine, theirs])
    seen = await requests.find_request(
        service_requests=service_requests, request_id=mine.id, viewer=CITIZEN
    )
    assert seen.id == mine.id and seen.assigned_to is None
    assert mine.assigned_to == "staff-9"  # the row itself is untouched
    with pytest.raises(requests.RequestNotFound):
        await requests.find_request(
            service_requests=service_requests, request_id=theirs.id, viewer=CITIZEN
        )
    staff_view = await requests.find_request(
        service_requests=service_requests, request_id=theirs.id, viewer=STAFF
    )
    assert staff_view is theirs
    with pytest.raises(requests.RequestNotFound):  # a citizen without a subject: nobody's
        await requests.find_request(
            service_requests=service_requests,
            request_id=mine.id,
            viewer=requests.Viewer(staff=False, subject=None),
        )


async def test_a_citizen_s_timeline_hides_the_council_s_internal_working() -> None:
    request = make_request(citizen_id="citizen-1")

    def update(status: str, previous: str | None, **fields: object) -> ServiceRequestUpdate:
        return ServiceRequestUpdate(
            request_id=request.id,
            status=status,
            previous_status=previous,
            occurred_at=NOW,
            **fields,
        )

    service_requests = FakeRequests(
        [request],
        [
            update("open", None, actor="citizen-1"),
            update("open", "open", assigned_to="staff-9"),  # assignment only
            update("open", "open", note="Caller sounds cross", note_visibility="internal"),
            update("in_progress", "open", note="Internal detail", note_visibility="internal"),
            update("fixed", "in_progress", note="Cleared today", note_visibility="public"),
        ],
    )
    timeline = await requests.request_updates(
        service_requests=service_requests, request_id=request.id, viewer=CITIZEN
    )
    assert [(u.status, u.note, u.note_visibility, u.assigned_to) for u in timeline] == [
        ("open", None, None, None),
        ("in_progress", None, None, None),
        ("fixed", "Cleared today", "public", None),
    ]
    everything = await requests.request_updates(
        service_requests=service_requests, request_id=request.id, viewer=STAFF
    )
    assert len(everything) == 5


async def test_a_citizen_lists_their_own_and_staff_the_queue() -> None:
    older = make_request(
        citizen_id="citizen-1", created_at=NOW - timedelta(days=1), assigned_to="staff-9"
    )
    newer = make_request(citizen_id="citizen-1")
    other = make_request(citizen_id="citizen-2", status="fixed")
    service_requests = FakeRequests([older, newer, other])
    rows, total = await requests.list_requests(service_requests=service_requests, viewer=CITIZEN)
    assert [r.id for r in rows] == [newer.id, older.id] and total == 2
    assert all(r.assigned_to is None for r in rows)
    rows, total = await requests.list_requests(
        service_requests=service_requests, viewer=STAFF, status="fixed"
    )
    assert [r.id for r in rows] == [other.id] and total == 1
    rows, total = await requests.list_requests(
        service_requests=service_requests, viewer=STAFF, page=2, size=2
    )
    assert len(rows) == 1 and total == 3
