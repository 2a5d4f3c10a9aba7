"""Citizens' search over published entries (PostgreSQL full text / SQLite FTS5), filters,
pages, sorting and conditional GETs."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def published(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/services", json=body)
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/services/{r.json()['id']}/publish")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def names(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [s["name"] for s in r.json()["items"]]


def test_search_filters_pages_and_caching(client: TestClient, anonymous_client: TestClient) -> None:
    published(
        client,
        name="Report a pothole",
        description="Holes in roads",
        keywords=["potholes", "roads"],
        groups=["Roads and transport"],
        lgsl_codes=[1096],
        channels={"online_url": "https://www.milton-keynes.gov.uk/potholes"},
    )
    published(
        client,
        name="Report fly-tipping",
        description="Rubbish dumped in the street",
        keywords=["dumping", "rubbish"],
        groups=["Environment"],
        lgsl_codes=[1038],
        channels={"phone": "01908 252570"},
    )
    published(
        client,
        name="Pay council tax",
        description="Pay your bill online",
        keywords=["council tax", "payment"],
        groups=["Council tax and benefits"],
        lgsl_codes=[856, 10960],
        channels={"online_url": "https://mk.example/pay", "phone": "01908 252222"},
    )
    draft = client.post(
        "/api/v1/services", json={"name": "Secret pothole draft", "keywords": ["potholes"]}
    )
    assert draft.status_code == 201

    url = "/api/v1/services"
    assert names(anonymous_client.get(url, params={"sort": "name"})) == [
        "Pay council tax",
        "Report a pothole",
        "Report fly-tipping",
    ]
    assert names(anonymous_client.get(url, params={"q": "pothole"})) == ["Report a pothole"]
    assert names(anonymous_client.get(url, params={"q": "dumping"})) == ["Report fly-tipping"]
    assert names(anonymous_client.get(url, params={"q": "bill"})) == ["Pay council tax"]
    assert names(anonymous_client.get(url, params={"q": "nothing-like-this"})) == []
    assert names(anonymous_client.get(url, params={"group": "Environment"})) == [
        "Report fly-tipping"
    ]
    assert names(anonymous_client.get(url, params={"channel": "phone", "sort": "-name"})) == [
        "Report fly-tipping",
        "Pay council tax",
    ]
    assert names(anonymous_client.get(url, params={"lgsl": 1096})) == ["Report a pothole"]
    assert names(anonymous_client.get(url, params={"lgsl": 10960})) == ["Pay council tax"]
    assert names(anonymous_client.get(url, params={"lgsl": 96})) == []

    first = anonymous_client.get(url, params={"sort": "name", "size": 2})
    assert names(first) == ["Pay council tax", "Report a pothole"]
    assert first.json()["total"] == 3
    second = anonymous_client.get(url, params={"sort": "name", "size": 2, "page": 2})
    assert names(second) == ["Report fly-tipping"]

    assert first.headers["cache-control"].startswith("public")
    etag = first.headers["etag"]
    again = anonymous_client.get(
        url, params={"sort": "name", "size": 2}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.headers["etag"] == etag
    assert anonymous_client.get(url, params={"size": 0}).status_code == 422


def test_a_word_search_on_a_read_session_keeps_its_index_only_setting(
    new_postgres_database: Any,
) -> None:
    """PostgreSQL: reads are autocommit, where ``SET LOCAL`` would be ignored (with only a
    warning) and a common word would go back to scanning every row; the search gets a
    transaction of its own for it, and leaves none open. (SQLite searches its FTS5 index.)"""
    import asyncio

    from citizen_services.application import search
    from citizen_services.config import Settings
    from citizen_services.main import create_app
    from citizen_services.persistence.catalogue import CatalogueRepository
    from servicekit.db import Database
    from servicekit.testing import STAFF, identity_headers

    settings = Settings(
        database_url=new_postgres_database("citizen_services"),
        messaging_enabled=False,
        environment="test",
        seed_data=False,
    )
    with TestClient(create_app(settings), headers=identity_headers(*STAFF)) as client:
        published(client, name="Pay council tax", keywords=["council tax"])

    async def run() -> tuple[int, list[str], bool]:
        database = Database(settings.database_url)
        notices: list[str] = []
        try:
            async with database.read_session() as db:
                raw = (await (await db.connection()).get_raw_connection()).driver_connection
                raw.add_log_listener(lambda _c, m: notices.append(str(m)))
                found = await search.find_services(
                    entries=CatalogueRepository(db), query=search.SearchServices(q="council tax")
                )
                return found.total, notices, raw.is_in_transaction()
        finally:
            await database.dispose()

    total, notices, open_transaction = asyncio.run(run())
    assert total == 1
    assert notices == []  # "SET LOCAL can only be used in transaction blocks" before
    assert not open_transaction
