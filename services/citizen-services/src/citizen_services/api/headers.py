"""Response headers as the OpenAPI document describes them."""

from __future__ import annotations

from typing import Any


def header(name: str, description: str) -> dict[str, dict[str, Any]]:
    """A response's ``headers`` entry for ``name``: a string the response always carries."""
    return {name: {"description": description, "required": True, "schema": {"type": "string"}}}
