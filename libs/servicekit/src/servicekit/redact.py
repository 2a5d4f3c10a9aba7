"""Scrubbing personal data (email addresses, phone numbers) out of text bound for logs,
traces, error messages and dead-letter headers. Defence in depth: code should not put
personal data there in the first place."""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# UK numbers: +44 / 0044 / 0 followed by 9-10 digits, with optional spaces or dashes.
_PHONE = re.compile(r"(?<![\w.])(?:\+44\s?|0044\s?|0)(?:\d[\s\-]?){9,10}(?!\w)")


def scrub(text: str) -> str:
    """Replace email addresses and UK phone numbers with placeholders."""
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub("[phone]", text)


def without(value: Any, subject: str) -> Any:
    """``value`` (decoded JSON) with every occurrence of ``subject`` gone: a string equal to
    it becomes null, a list loses it. For erasure: event payloads kept after a citizen asked
    to be forgotten."""
    if isinstance(value, dict):
        return {k: without(v, subject) for k, v in value.items()}
    if isinstance(value, list):
        return [without(v, subject) for v in value if v != subject]
    return None if value == subject else value
