"""Conditional reads of the catalogue (ETag, Cache-Control, If-None-Match → 304) on lists and
single entries, and who may list entries that are not published; SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from citizen_services.config import Settings
from citizen_services.main import create_app
from servicekit.errors import PROBLEM_JSON
from servicekit.testing import CITIZEN, identity_headers

from .test_catalogue_search import published

URL = "/api/v1/services"


def test_list_answers_304_until_the_catalogue_changes(
    client: TestClient, anonymous_client: TestClient
) -> None:
    entry = published(client, name="Report a pothole", keywords=["potholes"])
    published(client, name="Pay council tax", keywords=["council tax"])

    first = anonymous_client.get(URL, params={"q": "pothole"})
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "public, max-age=60"

    again = anonymous_client.get(URL, params={"q": "pothole"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=60"
    # any of a list of tags; the strong form of a weak tag compares equal (weak comparison)
    for header in (f'"nope", {etag}', etag.removeprefix("W/"), "*"):
        assert (
            anonymous_client.get(
                URL, params={"q": "pothole"}, headers={"If-None-Match": header}
            ).status_code
            == 304
        )
    # another query, another representation; the same words differently spelt, the same
    other = anonymous_client.get(URL, params={"q": "council tax"})
    assert other.headers["etag"] != etag
    assert anonymous_client.get(URL, params={"q": "  Pothole "}).headers["etag"] == etag
    assert (
        anonymous_client.get(
            URL, params={"q": "pothole"}, headers={"If-None-Match": '"stale"'}
        ).status_code
        == 200
    )

    # a change to the catalogue: the old tag no longer matches, the new page shows it
    r = client.patch(
        f"{URL}/{entry['id']}",
        json={"description": "Holes in roads"},
        headers={"If-Match": f'"{entry["version"]}"'},
    )
    assert r.status_code == 200, r.text
    changed = anonymous_client.get(URL, params={"q": "pothole"}, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["items"][0]["description"] == "Holes in roads"
    assert (
        anonymous_client.get(
            URL, params={"q": "pothole"}, headers={"If-None-Match": changed.headers["etag"]}
        ).status_code
        == 304
    )
    # an empty page carries a tag too
    empty = anonymous_client.get(URL, params={"q": "nothing-like-this"})
    assert empty.json() == {"items": [], "page": 1, "size": 20, "total": 0}
    assert (
        anonymous_client.get(
            URL, params={"q": "nothing-like-this"}, headers={"If-None-Match": empty.headers["etag"]}
        ).status_code
        == 304
    )


def test_single_entry_answers_304_for_its_version(
    client: TestClient, anonymous_client: TestClient
) -> None:
    entry = published(client, name="Report a pothole")
    url = f"{URL}/{entry['id']}"
    first = anonymous_client.get(url)
    assert first.status_code == 200 and first.json()["name"] == "Report a pothole"
    assert first.headers["etag"] == '"2"'
    assert first.headers["cache-control"] == "public, no-cache"
    for header in ('"2"', 'W/"2"', '"1", "2"', "*"):
        r = anonymous_client.get(url, headers={"If-None-Match": header})
        assert r.status_code == 304 and r.content == b"", header
        assert r.headers["etag"] == '"2"'
    assert anonymous_client.get(url, headers={"If-None-Match": '"1"'}).status_code == 200

    r = client.patch(
        url, json={"name": "Report a pothole or sinkhole"}, headers={"If-Match": '"2"'}
    )
    assert r.status_code == 200, r.text
    # The writing process reads its own write at once; the other app (another process, as
    # far as the database can tell) once the change reaches it: on SQLite at once
    # (data_version), on PostgreSQL when its NOTIFY arrives (servicekit.readcache).
    r = client.get(url, headers={"If-None-Match": '"2"'})
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    deadline = time.monotonic() + 10
    while True:
        r = anonymous_client.get(url, headers={"If-None-Match": '"2"'})
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    assert r.json()["name"] == "Report a pothole or sinkhole"


def test_a_draft_is_private_and_never_304_for_others(
    client: TestClient, anonymous_client: TestClient
) -> None:
    draft = client.post(URL, json={"name": "Secret draft"}).json()
    url = f"{URL}/{draft['id']}"
    staff = client.get(url)
    assert staff.status_code == 200 and staff.headers["cache-control"] == "private, no-cache"
    assert client.get(url, headers={"If-None-Match": '"1"'}).status_code == 304
    # no hint that it exists, even to someone who guesses its tag
    for header in ({}, {"If-None-Match": '"1"'}, {"If-None-Match": "*"}):
        r = anonymous_client.get(url, headers=header)
        assert r.status_code == 404, header


def test_only_staff_list_entries_that_are_not_published(
    settings: Settings, client: TestClient, anonymous_client: TestClient
) -> None:
    published(client, name="Pay council tax", keywords=["council tax"])
    client.post(URL, json={"name": "Council tax discounts (draft)", "keywords": ["council tax"]})
    client.post(URL, json={"name": "Another draft"})
    suspended = published(client, name="Garden waste (suspended)")
    r = client.post(f"{URL}/{suspended['id']}/suspend", json={"reason": "Winter break"})
    assert r.status_code == 200, r.text

    def names(r: Any) -> list[str]:
        assert r.status_code == 200, r.text
        return [s["name"] for s in r.json()["items"]]

    assert names(client.get(URL, params={"sort": "name"})) == ["Pay council tax"]
    drafts = client.get(URL, params={"status": "draft", "sort": "name"})
    assert names(drafts) == ["Another draft", "Council tax discounts (draft)"]
    assert drafts.json()["total"] == 2
    assert drafts.headers["cache-control"] == "private, no-cache"
    assert (
        client.get(
            URL,
            params={"status": "draft", "sort": "name"},
            headers={"If-None-Match": drafts.headers["etag"]},
        ).status_code
        == 304
    )
    assert names(client.get(URL, params={"status": "draft", "q": "council tax"})) == [
        "Council tax discounts (draft)"
    ]
    assert names(client.get(URL, params={"status": "suspended"})) == ["Garden waste (suspended)"]
    # the published list and a draft list of the same query are different representations
    assert (
        client.get(URL, params={"status": "published"}).headers["etag"]
        != client.get(URL, params={"status": "draft"}).headers["etag"]
    )

    with TestClient(create_app(settings), headers=identity_headers(*CITIZEN)) as citizen:
        for caller in (anonymous_client, citizen):
            for status in ("draft", "suspended", "retired"):
                r = caller.get(URL, params={"status": status})
                assert r.status_code == 403, r.text
                assert r.headers["content-type"].startswith(PROBLEM_JSON)
                assert r.json()["status"] == 403
            assert names(caller.get(URL, params={"status": "published"})) == ["Pay council tax"]
    assert anonymous_client.get(URL, params={"status": "deleted"}).status_code == 422


def test_bad_list_parameters_are_422_problems_naming_the_field(
    client: TestClient, anonymous_client: TestClient
) -> None:
    published(client, name="Pay council tax", groups=["Council tax"])
    for params, field in (
        ({"group": "Council\x00tax"}, "query.group"),
        ({"q": "x" * 5000}, "query.q"),
        ({"sort": "bogus"}, "query.sort"),
        ({"page": 0}, "query.page"),
        ({"size": 101}, "query.size"),
    ):
        r = anonymous_client.get(URL, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith(PROBLEM_JSON)
        assert [e["field"] for e in r.json()["errors"]] == [field]
    # words only of punctuation are no words: the whole (published) catalogue, not an error
    r = anonymous_client.get(URL, params={"q": "!!! ... ???"})
    assert [s["name"] for s in r.json()["items"]] == ["Pay council tax"]
    # an If-None-Match that is no ETag of ours matches nothing: a full 200
    for garbage in ("garbage", '"", W/, ,,', "x" * 4000):
        r = anonymous_client.get(URL, headers={"If-None-Match": garbage})
        assert r.status_code == 200 and r.json()["total"] == 1
