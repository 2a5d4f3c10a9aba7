"""problem+json from the gateway becomes an ApiError with its field errors, and the form's
error messages on the form's own fields."""

from __future__ import annotations

import httpx

from webkit.api import ApiError
from webkit.forms import from_api


def test_problem_json_becomes_field_errors() -> None:
    response = httpx.Response(
        422,
        headers={"content-type": "application/problem+json"},
        json={
            "title": "Invalid request",
            "detail": "Invalid field(s): contact.email, attributes.depth",
            "code": "validation-error",
            "errors": [
                {"field": "contact.email", "message": "value is not a valid email address"},
                {"field": "attributes.depth", "message": "must be a number"},
                {"field": "elsewhere", "message": "odd"},
            ],
        },
    )
    error = ApiError.from_response(response)
    assert error.status == 422 and error.code == "validation-error"
    assert error.errors["contact.email"] == "value is not a valid email address"
    form = from_api(
        error.errors,
        {"contact.email": "email", "attributes": "attribute"},
        fallback="description",
        messages={"email": "Enter an email address in the correct format, like name@example.com"},
    )
    assert form["email"].startswith("Enter an email address")
    assert form["attribute-depth"] == "Must be a number"
    assert form["description"] == "odd"
    assert list(form) == ["email", "attribute-depth", "description"]


def test_a_non_json_error_still_has_a_title() -> None:
    error = ApiError.from_response(httpx.Response(502, text="<html>bad gateway</html>"))
    assert error.status == 502 and error.title == "Bad Gateway" and error.errors == {}
