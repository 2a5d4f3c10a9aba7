"""``servicekit.redact.scrub``: personal data out, everything else left exactly as it was."""

from __future__ import annotations

import uuid

import pytest

from servicekit.redact import scrub


@pytest.mark.parametrize(
    "email",
    [
        "jane.doe@milton-keynes.gov.uk",
        "j.o'neil+alerts@example.co.uk",
        "UPPER_CASE-99@Sub.Domain.ORG",
        "a@b.io",
    ],
)
def test_email_addresses_are_replaced(email: str) -> None:
    assert scrub(f"sent to {email} today") == "sent to [email] today"


def test_several_addresses_in_one_text_all_go() -> None:
    out = scrub("from a.b@x.example to c.d@y.example, cc e@z.example")
    assert out == "from [email] to [email], cc [email]"


@pytest.mark.parametrize(
    "phone",
    [
        "07700900123",  # mobile, no spaces
        "07700 900123",  # mobile, usual grouping
        "07700 900 123",
        "07700-900-123",
        "+447700900123",  # international
        "+44 7700 900123",
        "0044 7700 900123",
        "01908 252525",  # Milton Keynes landline
        "01908252525",
        "020 7946 0018",  # London
        "0808 157 0192",  # freephone
    ],
)
def test_uk_phone_numbers_are_replaced(phone: str) -> None:
    assert scrub(f"call {phone} now") == "call [phone] now"
    assert scrub(f"({phone})") == "([phone])"
    assert scrub(phone) == "[phone]"


def test_email_and_phone_together() -> None:
    text = "Citizen jo@example.com (07700 900123) asked for a callback"
    assert scrub(text) == "Citizen [email] ([phone]) asked for a callback"


@pytest.mark.parametrize(
    "text",
    [
        "service 12345 published",
        "order #987654321",
        "offset 1234567890123",
        "request 3f2a0c1e-0123-4567-8901-234567890123 failed",
        "at 2026-11-26T05:00:00.123+00:00",
        "HTTP 503 after 0.25s; 12.5% of 10,000 requests",
        "version 1.2.3 on 127.0.0.1:8001",
        "postcode MK9 3EJ",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "a run of digits 012345678901234 is not a phone number",
        "no personal data here",
        "",
    ],
)
def test_other_digits_and_text_are_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_random_uuids_are_never_mistaken_for_phone_numbers() -> None:
    for _ in range(2000):
        text = f"id={uuid.uuid4()} hex={uuid.uuid4().hex} int={uuid.uuid4().int % 10**12:012d}"
        # 12-digit zero-padded integers are 0 + 11 digits: too long for a UK number.
        assert scrub(text) == text
