"""Notify's template syntax, markdown subset, SMS length and recipients (no I/O)."""

from __future__ import annotations

import pytest

from notifications.domain import recipients, templating
from notifications.domain.templating import (
    MissingPersonalisation,
    fill,
    markdown_to_html,
    markdown_to_text,
    placeholders,
    render_email,
    render_sms,
    sms_info,
)


@pytest.mark.parametrize(
    "key", ["first name", "First_Name", "FIRST-NAME", "firstname", " first  name "]
)
def test_keys_match_ignoring_case_spaces_underscores_and_hyphens(key: str) -> None:
    assert fill("Dear ((first name))", {key: "Ann"}) == "Dear Ann"


def test_placeholders_are_listed_once_in_order_with_their_first_spelling() -> None:
    assert placeholders("((Name)) ((ref))", "((name)) ((show??x)) ((ref))") == [
        "Name",
        "ref",
        "show",
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("yes", True),
        ("Yes", True),
        ("true", True),
        (True, True),
        ("1", True),
        ("no", False),
        ("", False),
        (False, False),
        ("maybe", False),
        (None, False),
    ],
)
def test_conditional_text_shows_for_yes_and_true_only(value: object, shown: bool) -> None:
    assert fill("a((flag??, b)).", {"flag": value}) == ("a, b." if shown else "a.")


def test_missing_personalisation_names_each_missing_field_conditionals_included() -> None:
    with pytest.raises(MissingPersonalisation) as info:
        render_email("Hi ((name))", "((ref)) ((show??x))", {"Name": "Ann"})
    assert info.value.names == ["ref", "show"]


def test_a_list_value_is_a_bullet_list_in_email_and_a_sentence_in_sms() -> None:
    email = render_email(
        "Items: ((items))",
        "You need:\n\n((items))\n\nThanks",
        {"items": ["a passport", "", "a bill"]},
    )
    assert email.subject == "Items: a passport and a bill"
    assert "<ul><li>a passport</li><li>a bill</li></ul>" in email.html
    assert "• a passport\n• a bill" in email.text
    assert render_sms("Bring ((items))", {"items": ["x", "y", "z"]}).body == "Bring x, y and z"


def test_values_are_escaped_in_html() -> None:
    email = render_email("s", "Hello ((name))", {"name": "<script>x</script> & co"})
    assert "&lt;script&gt;x&lt;/script&gt; &amp; co" in email.html
    assert "<script>" not in email.html
    assert "<script>x</script> & co" in email.text


def test_markdown_subset_to_html() -> None:
    source = (
        "# Your appointment\n\n"
        "First line\nsecond line\n\n"
        "* one\n* two\n- three\n\n"
        "1. first\n2. second\n\n"
        "^ Bring your letter\n\n"
        "---\n\n"
        "Visit https://www.milton-keynes.gov.uk/bins. Or [our site](https://mk.example/a)"
    )
    assert markdown_to_html(source).split("\n") == [
        "<h2>Your appointment</h2>",
        "<p>First line<br>second line</p>",
        "<ul><li>one</li><li>two</li><li>three</li></ul>",
        "<ol><li>first</li><li>second</li></ol>",
        "<blockquote><p>Bring your letter</p></blockquote>",
        "<hr>",
        '<p>Visit <a href="https://www.milton-keynes.gov.uk/bins">'
        "https://www.milton-keynes.gov.uk/bins</a>. Or "
        '<a href="https://mk.example/a">our site</a></p>',
    ]


def test_markdown_subset_to_plain_text() -> None:
    text = markdown_to_text(
        "# Title\n\nPara\n\n* a\n* b\n\n1. x\n2. y\n\n^ Inset\n\n---\n\n[site](https://mk.example)"
    )
    assert text.split("\n\n") == [
        "Title\n" + "-" * 65,
        "Para",
        "• a\n• b",
        "1. x\n2. y",
        "Inset",
        "=" * 65,
        "site: https://mk.example\n",
    ]


def test_no_other_markup_is_interpreted() -> None:
    assert markdown_to_html("<b>bold</b> *not emphasis*") == (
        "<p>&lt;b&gt;bold&lt;/b&gt; *not emphasis*</p>"
    )


@pytest.mark.parametrize(
    ("text", "encoding", "length", "fragments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count double
        ("[" * 81, "GSM-7", 162, 2),
        ("é" * 160, "GSM-7", 160, 1),  # é is in GSM-7's basic set
        ("ŵ" * 70, "UCS-2", 70, 1),  # Welsh ŵ is not: the whole text is UCS-2
        ("ŵ" + "a" * 70, "UCS-2", 71, 2),
        ("ŵ" * 134, "UCS-2", 134, 2),
        ("ŵ" * 135, "UCS-2", 135, 3),
    ],
)
def test_sms_length_and_fragments(text: str, encoding: str, length: int, fragments: int) -> None:
    info = sms_info(text)
    assert (info.encoding, info.length, info.fragments) == (encoding, length, fragments)


def test_sms_downgrades_smart_punctuation_to_stay_gsm7() -> None:
    sms = render_sms("  It\u2019s \u201cready\u201d \u2013 ((n))  ", {"n": "1"})
    assert sms.body == 'It\'s "ready" - 1'
    assert sms.info.encoding == "GSM-7"


def test_sms_limit_is_918_characters() -> None:
    assert not sms_info("a" * templating.SMS_CHAR_LIMIT).too_long
    assert sms_info("a" * (templating.SMS_CHAR_LIMIT + 1)).too_long


@pytest.mark.parametrize(
    "number",
    [
        "07700 900123",
        "07700900123",
        "+447700900123",
        "+44 (0)7700 900 123",
        "0044 7700 900123",
        "447700900123",
        "07700-900-123",
    ],
)
def test_uk_mobiles_are_normalised_to_e164(number: str) -> None:
    assert recipients.normalise_uk_mobile(number) == "+447700900123"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("01908 691691", "Not a UK mobile number"),
        ("+33 6 12 34 56 78", "Not a UK mobile number"),
        ("07700 90012", "Not enough digits"),
        ("07700 9001234", "Too many digits"),
        ("07700 9OO123", "Must not contain letters or symbols"),
    ],
)
def test_bad_numbers_are_refused(number: str, message: str) -> None:
    with pytest.raises(recipients.InvalidRecipient, match=message):
        recipients.normalise_uk_mobile(number)


@pytest.mark.parametrize(
    "email", ["resident@example.com", "a.b+c@sub.example.co.uk", "temp-fail@simulator.notify"]
)
def test_valid_emails(email: str) -> None:
    assert recipients.validate_email(f" {email} ") == email


@pytest.mark.parametrize(
    "email",
    ["no-at-sign", "a@b", "a@@b.com", "a b@c.com", "a@b..com", "x@example.c", "@example.com"],
)
def test_invalid_emails(email: str) -> None:
    with pytest.raises(recipients.InvalidRecipient, match="Not a valid email address"):
        recipients.validate_email(email)


def test_a_templates_placeholders_are_parsed_once_and_callers_cannot_change_them() -> None:
    body = "Dear ((first name)), ((Reference)) ((show??Shown)) ((first_name))"
    first = templating.placeholders("Re ((reference))", body)
    hits = templating._placeholders.cache_info().hits
    first.append("changed by a caller")
    assert templating.placeholders("Re ((reference))", body) == ["reference", "first name", "show"]
    assert templating._placeholders.cache_info().hits == hits + 1
    assert templating.missing({"Reference": 1, "FIRST-NAME": "A"}, "Re ((reference))", body) == [
        "show"
    ]
