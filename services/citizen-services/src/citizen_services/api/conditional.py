"""Conditional requests (RFC 9110 13.1.2): what the catalogue and HSDS lists share."""

from __future__ import annotations

from typing import Any

from citizen_services.api.headers import header


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header (ETags, comma-separated, or ``*``) matches
    ``etag``, compared weakly (RFC 9110 13.1.3); anything unparsable simply does not."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def conditional_responses(etag: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a conditional read: its 200 and its 304 both carry the
    ``etag`` header (described by its API) and ``Cache-Control``."""
    headers = {**etag, **header("Cache-Control", "How long the page may be reused.")}
    return {
        200: {"headers": headers},
        304: {"description": "Not modified (If-None-Match matched the ETag)", "headers": headers},
    }
