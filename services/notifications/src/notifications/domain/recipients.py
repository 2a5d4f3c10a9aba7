"""Recipients as Notify accepts them: email addresses, and mobile numbers in E.164 (UK
ones by Notify's own rules, international ones with ``phonenumbers``).

The messages are Notify's (its ``ValidationError`` texts prefix them with the field name).
"""

from __future__ import annotations

import re

import phonenumbers

#: Notify's simulated recipients: never sent anywhere, whatever the key type.
SIMULATED_EMAILS = frozenset(
    {
        "simulate-delivered@notifications.service.gov.uk",
        "simulate-delivered-2@notifications.service.gov.uk",
        "simulate-delivered-3@notifications.service.gov.uk",
    }
)
SIMULATED_PHONES = frozenset({"+447700900000", "+447700900111", "+447700900222"})
#: With a test key these give the failure statuses (Notify's documented test recipients).
TEMP_FAIL_EMAIL = "temp-fail@simulator.notify"
PERM_FAIL_EMAIL = "perm-fail@simulator.notify"
TEMP_FAIL_PHONE = "+447700900003"
PERM_FAIL_PHONE = "+447700900002"

_ATOM = r"[^\s@\"(),:;<>\[\\\]]"
_LABEL = r"[^\s@\"(),:;<>\[\\\].]"
_EMAIL = re.compile(rf"^{_ATOM}+@({_LABEL}+\.)+{_LABEL}{{2,}}$")
_LOCAL_PART_MAX = 64
_EMAIL_MAX = 320


class InvalidRecipient(ValueError):
    """The message is Notify's, without the field name."""


def validate_email(value: str) -> str:
    email = value.strip()
    if (
        len(email) > _EMAIL_MAX
        or not _EMAIL.match(email)
        or len(email.split("@", 1)[0]) > _LOCAL_PART_MAX
        or ".." in email
    ):
        raise InvalidRecipient("Not a valid email address")
    return email


def normalise_uk_mobile(value: str) -> str:
    """A UK mobile number as E.164 (``+447700900123``); raises :class:`InvalidRecipient`."""
    raw = value.strip()
    if re.search(r"[^\d\s()+\-.]", raw):
        raise InvalidRecipient("Must not contain letters or symbols")
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+") or digits.startswith("00"):
        digits = digits.removeprefix("00")
        if not digits.startswith("44"):
            raise InvalidRecipient("Not a UK mobile number")
        national = digits[2:].removeprefix("0")
    elif digits.startswith("44") and len(digits) > 11:
        national = digits[2:].removeprefix("0")
    else:
        national = digits.removeprefix("0")
    if not national.startswith("7"):
        raise InvalidRecipient("Not a UK mobile number")
    if len(national) < 10:
        raise InvalidRecipient("Not enough digits")
    if len(national) > 10:
        raise InvalidRecipient("Too many digits")
    return "+44" + national


_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
_LENGTH_ERRORS = {
    phonenumbers.ValidationResult.TOO_LONG: "Too many digits",
    phonenumbers.ValidationResult.TOO_SHORT: "Not enough digits",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "Not enough digits",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "Not a valid country prefix",
}
INVALID_NUMBER = "Number is not valid \u2013 double check the phone number you entered"


def _international(value: str) -> str | None:
    """``value`` as an international number (``+`` or ``00`` and a country code other
    than 44), else ``None``."""
    raw = value.strip()
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+"):
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    else:
        return None
    return None if digits.startswith("44") else "+" + digits


def normalise_phone(value: str) -> str:
    """A mobile number as E.164: UK ones as :func:`normalise_uk_mobile`, international
    ones (``+`` or ``00`` and another country code) checked with ``phonenumbers`` (Google's
    numbering plans): a mobile number of that country. Notify's messages."""
    if re.search(r"[^\d\s()+\-.]", value.strip()):
        raise InvalidRecipient("Must not contain letters or symbols")
    international = _international(value)
    if international is None:
        return normalise_uk_mobile(value)
    try:
        number = phonenumbers.parse(international, None)
    except phonenumbers.NumberParseException:
        raise InvalidRecipient("Not a valid country prefix") from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _LENGTH_ERRORS:
        raise InvalidRecipient(_LENGTH_ERRORS[possible])
    if not phonenumbers.is_valid_number(number):
        raise InvalidRecipient(INVALID_NUMBER)
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidRecipient("Not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def team_member(value: str) -> str:
    """A team member as a team key compares it: an email address lower-cased, a UK mobile
    as E.164. Raises :class:`InvalidRecipient` (its message has no value)."""
    return validate_email(value).lower() if "@" in value else normalise_phone(value)


def team_members(lines: str) -> set[str]:
    """A Notify service's team (one member a line), as a team key compares them; lines
    that are not a valid member are left out."""
    members: set[str] = set()
    for line in lines.splitlines():
        if not line.strip():
            continue
        try:
            members.add(team_member(line))
        except InvalidRecipient:
            continue
    return members
