"""Seed data: every record is a valid catalogue entry; a first start publishes them all,
searchable; a second start adds nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from citizen_services.api.schemas import ServiceCreate
from citizen_services.application.seed import seed_records
from citizen_services.config import Settings
from citizen_services.main import create_app


def test_seed_records_are_valid_and_realistic() -> None:
    records = [ServiceCreate.model_validate(r) for r in seed_records()]
    assert len(records) >= 180
    assert len({r.name for r in records}) == len(records)
    reportable = [r for r in records if r.attributes]
    assert len(reportable) >= 30
    names = " ".join(r.name.lower() for r in records)
    for topic in (
        "council tax",
        "missed bin",
        "parking permit",
        "planning",
        "housing",
        "library",
        "school place",
        "blue badge",
        "fly-tipping",
        "pothole",
        "graffiti",
        "street light",
    ):
        assert topic in names, topic


def test_first_start_seeds_once(settings: Settings) -> None:
    seeded = settings.model_copy(update={"seed_data": True})
    with TestClient(create_app(seeded)) as client:
        page = client.get("/api/v1/services", params={"size": 1}).json()
        assert page["total"] == len(seed_records())
        hits = client.get("/api/v1/services", params={"q": "fly tipping"}).json()["items"]
        assert hits and hits[0]["name"] == "Report fly-tipping"
    with TestClient(create_app(seeded)) as client:
        assert client.get("/api/v1/services", params={"size": 1}).json()["total"] == len(
            seed_records()
        )
