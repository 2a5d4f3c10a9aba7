"""Conditional requests (RFC 9110 13.1.2): what the catalogue and HSDS lists share."""

from __future__ import annotations


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header (ETags, comma-separated, or ``*``) matches
    ``etag``, compared weakly (RFC 9110 13.1.3); anything unparsable simply does not."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags
