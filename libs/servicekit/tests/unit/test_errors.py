"""RFC 9457 problem details from ``servicekit.problems.install_problem_handlers``, on a
tiny FastAPI app."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from servicekit.errors import PROBLEM_JSON, TYPE_BASE, Conflict, DomainError, NotFound
from servicekit.problems import install_problem_handlers


class EnrolmentClosed(DomainError):
    status, code, title = 422, "enrolment-closed", "Enrolment closed"


class CourseFull(Conflict):
    code, title = "course-full", "Course full"


class Enrol(BaseModel):
    name: str = Field(min_length=1)
    age: int = Field(ge=16)


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/courses/{course_id}/enrolments")
    async def enrol(course_id: int, body: Enrol, limit: int = 10) -> dict[str, str]:
        if course_id == 1:
            raise EnrolmentClosed(
                "Enrolment closed on 1 May.", course_id=course_id, closed_on="2026-05-01"
            )
        if course_id == 2:
            raise CourseFull(places=12)
        if course_id == 3:
            raise NotFound("No course 3.")
        if course_id == 4:
            raise RuntimeError("password=hunter2 in /srv/app/secret_module.py")
        return {"ok": body.name}

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(), raise_server_exceptions=False)


def test_domain_error_subclass_maps_to_its_status_type_detail_and_extensions(
    client: TestClient,
) -> None:
    r = client.post("/courses/1/enrolments", json={"name": "Sam", "age": 30})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json() == {
        "type": TYPE_BASE + "enrolment-closed",
        "title": "Enrolment closed",
        "status": 422,
        "detail": "Enrolment closed on 1 May.",
        "instance": "/courses/1/enrolments",
        "course_id": 1,
        "closed_on": "2026-05-01",
    }


def test_detail_defaults_to_title_and_subclass_of_conflict_keeps_409(client: TestClient) -> None:
    r = client.post("/courses/2/enrolments", json={"name": "Sam", "age": 30})
    assert r.status_code == 409
    body = r.json()
    assert body["type"] == TYPE_BASE + "course-full"
    assert body["title"] == body["detail"] == "Course full"
    assert body["places"] == 12


def test_not_found(client: TestClient) -> None:
    r = client.post("/courses/3/enrolments", json={"name": "Sam", "age": 30})
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"] == TYPE_BASE + "not-found"
    assert r.json()["detail"] == "No course 3."


def test_validation_error_names_every_bad_field(client: TestClient) -> None:
    r = client.post("/courses/x/enrolments?limit=many", json={"name": "", "age": 12})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["type"] == TYPE_BASE + "validation-error"
    assert body["status"] == 422
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"name", "age", "path.course_id", "query.limit"}
    assert all(e["message"] for e in body["errors"])
    assert body["detail"] == "Invalid field(s): age, name, path.course_id, query.limit"


def test_missing_body_field_is_named(client: TestClient) -> None:
    r = client.post("/courses/5/enrolments", json={"name": "Sam"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["age"]


def test_unexpected_exception_is_a_bare_500_without_internals(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="servicekit.problems"):
        r = client.post("/courses/4/enrolments", json={"name": "Sam", "age": 30})
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["type"] == TYPE_BASE + "internal-error"
    assert body["status"] == 500
    for secret in ("hunter2", "secret_module", "RuntimeError", "Traceback"):
        assert secret not in r.text
    # ...but it is logged, with the exception, for the people who run the service.
    [entry] = [rec for rec in caplog.records if rec.name == "servicekit.problems"]
    assert entry.exc_info and isinstance(entry.exc_info[1], RuntimeError)


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["title"] == "Not found"
    assert r.json()["instance"] == "/nowhere"

    r = client.get("/courses/5/enrolments")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["title"] == "Method not allowed"
    assert r.headers["allow"] == "POST"


def test_success_is_untouched(client: TestClient) -> None:
    r = client.post("/courses/5/enrolments", json={"name": "Sam", "age": 30})
    assert r.status_code == 200
    assert r.json() == {"ok": "Sam"}


def test_domain_errors_import_no_web_framework() -> None:
    """``application/`` and ``domain/`` raise these: importing them pulls in no FastAPI or
    Starlette (the handlers that map them to HTTP live in ``servicekit.problems``)."""
    import subprocess
    import sys

    code = (
        "import sys, servicekit.errors; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
