"""Which credentials a request presents, by auth mode.

* ``Authorization: Bearer <jwt>`` — a person, via the identity provider;
* ``X-API-Key: <key>`` or ``Authorization: ApiKey <key>`` — a partner system;
* on Open311 routes also ``api_key=<key>`` in the query string or a form body
  (form-encoded, or multipart/form-data: FixMyStreet's way of sending photos);
* on UPSTREAM routes ``Authorization`` belongs to the service and is never read.

Two different credentials in one request are refused rather than one silently preferred.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, unquote_plus

from gateway.auth.errors import bad_credentials
from gateway.routes import AuthMode, Route

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MULTIPART_CONTENT_TYPE = "multipart/form-data"
OPEN311_PARAM = "api_key"
#: A multipart part's field name (``name=``, not ``filename=``) in its header block.
_PART_NAME = re.compile(
    rb'(?im)^content-disposition:[^\r\n]*?(?<![A-Za-z*])name\s*=\s*(?:"([^"\r\n]*)"|([^;\s]*))'
)


class Kind(StrEnum):
    BEARER = "bearer"
    API_KEY = "api-key"


@dataclass(frozen=True)
class Credential:
    kind: Kind
    value: str

    def __repr__(self) -> str:  # never show the value
        return f"Credential(kind={self.kind.value!r})"


def is_form(content_type: str | None) -> bool:
    return (
        bool(content_type)
        and str(content_type).split(";", 1)[0].strip().lower() == FORM_CONTENT_TYPE
    )


def is_multipart(content_type: str | None) -> bool:
    return (
        bool(content_type)
        and str(content_type).split(";", 1)[0].strip().lower() == MULTIPART_CONTENT_TYPE
    )


def _boundary(content_type: str | None) -> bytes | None:
    """A multipart body's boundary (RFC 2046: 1-70 characters), or None."""
    if not is_multipart(content_type):
        return None
    for param in str(content_type).split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip().strip('"')
            if 0 < len(value) <= 70 and value.isascii():
                return value.encode("ascii")
    return None


def _multipart_split(body: bytes, boundary: bytes) -> tuple[list[str], bytes]:
    """The ``api_key`` fields of a multipart body, and the body without those parts (the
    rest byte for byte). Each part sits between two ``--boundary`` delimiters, which by
    construction appear nowhere inside a part; only the parts' header blocks are read, and
    the body is copied only when a part is dropped (a 10 MB photo: a few ms)."""
    delimiter = b"--" + boundary
    starts: list[int] = []
    at = body.find(delimiter)
    while at != -1:
        starts.append(at)
        at = body.find(delimiter, at + len(delimiter))
    keys: list[str] = []
    dropped: list[tuple[int, int]] = []
    for begin, end in itertools.pairwise(starts):
        part = begin + len(delimiter)
        head_end = body.find(b"\r\n\r\n", part, end)
        named = _PART_NAME.search(body, part, head_end) if head_end != -1 else None
        if named and (named.group(1) or named.group(2) or b"") == OPEN311_PARAM.encode():
            value = body[head_end + 4 : end].removesuffix(b"\r\n")
            keys.append(value.decode("utf-8", errors="replace"))
            dropped.append((begin, end))
    if not dropped:
        return keys, body
    view, last, kept = memoryview(body), 0, []
    for begin, end in dropped:
        kept.append(view[last:begin])
        last = end
    kept.append(view[last:])
    return keys, b"".join(kept)


def header_credentials(headers: Mapping[str, str], mode: AuthMode) -> list[Credential]:
    found: list[Credential] = []
    api_key = headers.get("x-api-key")
    if api_key is not None:
        found.append(Credential(Kind.API_KEY, api_key.strip()))
    authorization = headers.get("authorization")
    if authorization is not None and mode is not AuthMode.UPSTREAM:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            if value.startswith("mk_"):
                raise bad_credentials("API keys go in 'X-API-Key' or 'Authorization: ApiKey'.")
            found.append(Credential(Kind.BEARER, value))
        elif scheme.lower() == "apikey":
            found.append(Credential(Kind.API_KEY, value))
        else:
            raise bad_credentials("Unsupported Authorization scheme: use Bearer or ApiKey.")
    return found


def _open311_keys(encoded: str) -> list[str]:
    return parse_qs(encoded, keep_blank_values=True).get(OPEN311_PARAM, [])


def open311_credentials(
    query_string: str, form_body: bytes | None, content_type: str | None = None
) -> list[Credential]:
    """The ``api_key`` values of the query string and of a form body (form-encoded, or
    multipart when ``content_type`` says so)."""
    values = _open311_keys(query_string)
    if form_body:
        boundary = _boundary(content_type)
        if boundary is not None:
            values += _multipart_split(form_body, boundary)[0]
        elif not is_multipart(content_type):
            values += _open311_keys(form_body.decode("utf-8", errors="replace"))
    return [Credential(Kind.API_KEY, v.strip()) for v in values]


def without_open311_key(encoded: bytes, content_type: str | None = None) -> bytes:
    """A query string or form body without its ``api_key`` fields (however encoded; for a
    multipart body, as ``content_type`` has it, its ``api_key`` parts), the rest byte for
    byte: Open311's key stops at the gateway, it never reaches the service, its logs or its
    traces (``http.url``)."""
    if is_multipart(content_type):
        boundary = _boundary(content_type)
        return encoded if boundary is None else _multipart_split(encoded, boundary)[1]
    if b"%" not in encoded and OPEN311_PARAM.encode() not in encoded:
        return encoded
    kept = [
        part
        for part in encoded.split(b"&")
        if unquote_plus(part.split(b"=", 1)[0].decode("latin-1")) != OPEN311_PARAM
    ]
    return b"&".join(kept)


def has_header_credentials(headers: Mapping[str, str], route: Route) -> bool:
    return "x-api-key" in headers or (
        route.auth is not AuthMode.UPSTREAM and "authorization" in headers
    )


def may_present(headers: Mapping[str, str], query_string: str, route: Route, method: str) -> bool:
    """Whether a request may carry a credential (without reading a body): a header one, or
    on Open311 routes an ``api_key`` in the query string or any form POST (multipart
    included)."""
    if has_header_credentials(headers, route):
        return True
    if route.auth is not AuthMode.OPEN311:
        return False
    return bool(open311_credentials(query_string, None)) or (
        method.upper() == "POST"
        and (is_form(headers.get("content-type")) or is_multipart(headers.get("content-type")))
    )


def presented(
    headers: Mapping[str, str], query_string: str, route: Route, form_body: bytes | None
) -> Credential | None:
    """The one credential a request presents, None for none; refuses two different ones."""
    found = header_credentials(headers, route.auth)
    if route.auth is AuthMode.OPEN311:
        # A form body is only consulted when no header carries a credential.
        found += open311_credentials(
            query_string, None if found else form_body, headers.get("content-type")
        )
    unique = list(dict.fromkeys(found))
    if len(unique) > 1:
        raise bad_credentials("Present one credential per request, not several.")
    return unique[0] if unique else None
