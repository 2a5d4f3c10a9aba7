"""application/erasure.py on fake repositories: what a citizen's erasure removes and what
it keeps, without a database."""

from __future__ import annotations

import json

from citizen_services.application import erasure
from citizen_services.persistence.tables import ServiceRequestUpdate

from .fakes import NOW, FakeOutbox, FakeRequests, make_request


async def test_the_citizen_s_requests_keep_only_the_public_facts() -> None:
    mine = make_request(
        citizen_id="citizen-1",
        description="My neighbour dumped it",
        address="3 Bagshot Row",
        lat=52.040612,
        long=-0.759437,
        media_url="https://example.com/p.jpg",
        attributes={"bags": "3"},
        contact={"email": "a@example.com"},
        contact_consent=True,
        status="fixed",
    )
    theirs = make_request(citizen_id="citizen-2", description="Untouched")
    service_requests = FakeRequests(
        [mine, theirs],
        [
            ServiceRequestUpdate(
                request_id=mine.id, status="open", actor="citizen-1", occurred_at=NOW
            ),
            ServiceRequestUpdate(
                request_id=mine.id,
                status="fixed",
                previous_status="open",
                note="Spoke to the reporter",
                actor="staff-1",
                occurred_at=NOW,
            ),
            ServiceRequestUpdate(
                request_id=theirs.id, status="open", note="Kept", actor="citizen-2", occurred_at=NOW
            ),
        ],
    )
    outbox = FakeOutbox(
        {
            1: json.dumps(
                {
                    "request_id": str(mine.id),
                    "citizen_id": "citizen-1",
                    "description": "My neighbour dumped it",
                    "lat": 52.040612,
                    "status": "fixed",
                }
            ),
            2: json.dumps({"citizen_id": "citizen-2", "description": "Untouched"}),
        }
    )
    erased = await erasure.erase(
        service_requests=service_requests, outbox=outbox, citizen_id="citizen-1"
    )
    assert erased == 1
    assert (
        mine.citizen_id,
        mine.contact,
        mine.contact_consent,
        mine.description,
        mine.address,
        mine.media_url,
        mine.attributes,
    ) == (None, None, False, "", None, None, {})
    assert (mine.lat, mine.long, mine.status, mine.version) == (52.041, -0.759, "fixed", 2)
    assert theirs.description == "Untouched" and theirs.citizen_id == "citizen-2"
    notes = {(u.request_id, u.note, u.actor) for u in service_requests.update_rows}
    assert notes == {
        (mine.id, None, None),
        (mine.id, None, "staff-1"),
        (theirs.id, "Kept", "citizen-2"),
    }
    scrubbed = json.loads(outbox.payloads[1])
    assert scrubbed == {
        "request_id": str(mine.id),
        "citizen_id": None,
        "description": None,
        "lat": 52.041,
        "status": "fixed",
    }
    assert json.loads(outbox.payloads[2])["description"] == "Untouched"


async def test_erasing_again_changes_nothing() -> None:
    service_requests = FakeRequests([make_request(citizen_id="citizen-1")])
    outbox = FakeOutbox()
    assert (
        await erasure.erase(
            service_requests=service_requests, outbox=outbox, citizen_id="citizen-1"
        )
        == 1
    )
    assert (
        await erasure.erase(
            service_requests=service_requests, outbox=outbox, citizen_id="citizen-1"
        )
        == 0
    )


def test_the_subject_goes_from_nested_payloads_and_lists() -> None:
    payload = {"a": ["citizen-1", "other"], "b": {"who": "citizen-1", "note": "x", "n": 1}}
    assert erasure._scrub(payload, "citizen-1") == {
        "a": ["other"],
        "b": {"who": None, "note": None, "n": 1},
    }
    assert erasure.coarse(None) is None and erasure.coarse(1.23456) == 1.235
