"""Erasure of a citizen's service requests, on SQLite and PostgreSQL: the platform-wide
``CitizenErasureRequested`` (through the consumer and its inbox) removes the citizen's
subject id, contact details and free text from every table (the outbox included) and keeps
the service, the status history and a coarse location; another citizen's request is
untouched; the same event again, or a second request, changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from fastapi.testclient import TestClient

from citizen_services.messaging.subscriptions import SUBSCRIPTIONS
from contracts.privacy import CitizenErasureRequested
from servicekit.messaging.consumer import EventConsumer
from servicekit.testing import consumer_record, identity_headers

from .test_service_requests import CMK, FLY_TIPPING


def erasure(subject: str, offset: int) -> ConsumerRecord:  # type: ignore[type-arg]
    event = CitizenErasureRequested(
        citizen_id=subject,
        erasure_id=uuid.uuid4(),
        requested_by="citizen",
        occurred_at=datetime.now(UTC),
    )
    return consumer_record(event, offset, source="urn:uk-gov-milton-keynes:inclusion")


def all_text(client: TestClient) -> str:
    """Every row of every table in the service's database, as one string."""
    database = client.app.state.runtime.database  # type: ignore[attr-defined]

    async def dump() -> str:
        async with database.session() as db:
            conn = await db.connection()
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            out = []
            for name in sorted(names):
                rows = (await db.execute(sa.text(f'SELECT * FROM "{name}"'))).all()
                out += [repr(tuple(r)) for r in rows]
            return "\n".join(out)

    return client.portal.call(dump)  # type: ignore[union-attr,no-any-return]


def test_erasure_redacts_the_citizen_s_requests_and_keeps_the_public_facts(
    client: TestClient,
) -> None:
    service = client.post("/api/v1/services", json=FLY_TIPPING).json()
    assert client.post(f"/api/v1/services/{service['id']}/publish").status_code == 200
    subject = f"citizen-erase-{uuid.uuid4().hex[:8]}"
    me = identity_headers(subject, "citizen")
    report = {
        "service_code": "fly-tipping",
        "description": "Bilbo-Baggins dumped a sofa",
        "lat": 52.040612,
        "long": -0.759437,
        "address": "3 Bagshot Row, MK6 2LP",
        "attributes": {"waste_type": ["furniture"], "bags": "3"},
        "contact": {"email": "bilbo@example.com", "first_name": "Bilbo", "phone": "07700900123"},
        "contact_consent": True,
    }
    mine = client.post("/api/v1/service-requests", json=report, headers=me).json()
    theirs = client.post(
        "/api/v1/service-requests",
        headers=identity_headers("citizen-other", "citizen"),
        json={
            **report,
            "description": "Frodo saw it too",
            "address": "Central Milton Keynes",
            "contact": None,
            "contact_consent": False,
            **CMK,
        },
    ).json()
    url = f"/api/v1/service-requests/{mine['id']}"
    assert (
        client.post(
            f"{url}/updates", json={"status": "investigating", "note": "Called Bilbo-Baggins back"}
        ).status_code
        == 200
    )
    assert subject in all_text(client)

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    consumer = EventConsumer(
        runtime.database,
        bootstrap_servers="127.0.0.1:1",
        group_id="citizen-services",
        subscriptions=SUBSCRIPTIONS,
        service_name="citizen-services",
        source=runtime.settings.cloudevents_source,
    )

    def process(rec: Any) -> str:
        return client.portal.call(consumer.process, rec)  # type: ignore[union-attr,no-any-return]

    gone = erasure(subject, 1)
    assert process(gone) == "handled"
    assert process(gone) == "duplicate"
    text = all_text(client)
    for personal in (
        subject,
        "Bilbo",
        "bilbo@example.com",
        "07700900123",
        "Bagshot Row",
        "MK6 2LP",
        "52.040612",
    ):
        assert personal not in text, personal
    kept = client.get(url).json()  # staff still see the request's public facts
    assert (kept["service_code"], kept["status"]) == ("fly-tipping", "investigating")
    assert (kept["lat"], kept["long"]) == (52.041, -0.759)
    assert kept["description"] == "" and kept.get("address") is None
    assert [(u["status"], u["note"]) for u in kept["updates"]] == [
        ("open", None),
        ("investigating", None),
    ]
    other = client.get(f"/api/v1/service-requests/{theirs['id']}").json()
    assert other["description"] == "Frodo saw it too"
    assert client.get(url, headers=me).status_code == 404  # no longer theirs
    assert process(erasure(subject, 2)) == "handled"  # a second request: nothing changes
    assert client.get(url).json() == kept
