"""application/sent_messages.py without I/O: the filters of GET /api/v1/messages (each
bad one named, nothing ignored) and the masked recipient."""

from __future__ import annotations

import uuid

import pytest

from notifications.application.sent_messages import (
    BadFilter,
    mask_recipient,
    parse_query,
)


def test_filters_parsed() -> None:
    template = uuid.uuid4()
    query = parse_query(
        {
            "reference": ["ref-1"],
            "status": ["failed", "delivered"],
            "channel": ["sms"],
            "template_id": [str(template)],
            "page": ["3"],
            "page_size": ["20"],
        }
    )
    assert query.filter.reference == "ref-1"
    assert query.filter.statuses == (
        "delivered",
        "permanent-failure",
        "technical-failure",
        "temporary-failure",
    )
    assert (query.filter.channel, query.filter.template_id) == ("sms", template)
    assert (query.page, query.page_size) == (3, 20)
    empty = parse_query({})
    assert (empty.filter.statuses, empty.page, empty.page_size) == ((), 1, 50)


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"status": ["sent"]}, ["status"]),
        ({"channel": ["letter"], "page": ["0"]}, ["channel", "page"]),
        ({"page_size": ["٣"]}, ["page_size"]),  # a digit, but not an ASCII one
        ({"reference": [""]}, ["reference"]),
        ({"recipient": ["a@b.example"]}, ["recipient"]),
        ({"reference": ["a", "b"]}, ["reference"]),
    ],
)
def test_bad_filters_named(params: dict[str, list[str]], fields: list[str]) -> None:
    with pytest.raises(BadFilter) as raised:
        parse_query(params)
    assert sorted({e["field"] for e in raised.value.extensions["errors"]}) == fields


def test_recipients_masked() -> None:
    assert mask_recipient("jo.bloggs@example.com") == "j…@example.com"
    assert mask_recipient("+447700900123") == "+44…123"
    assert mask_recipient("12345") == "…"
    assert mask_recipient(None) is None
