"""OpenAPI pieces the inclusion routers share."""

from __future__ import annotations

from typing import Any

from servicekit.problems import problem_responses


def created_responses(what: str, *problems: int | tuple[int, str]) -> dict[int | str, Any]:
    """``responses=`` for a route that creates something: its 201 names the ``Location``
    header pointing at the new ``what``, then the problems it answers (as
    ``problem_responses``)."""
    location = {
        "description": f"Where the new {what} is.",
        "required": True,
        "schema": {"type": "string"},
    }
    return {201: {"headers": {"Location": location}}, **problem_responses(*problems)}
