"""Open311 GeoReport v2 wire formats: the same documents as XML or JSON, and its errors.

A document is plain data: a dict (one object: discovery, a service definition) or a list
of dicts (services, requests, updates), with ``str``/``int``/``float``/``bool``/``None``
values and nested lists. JSON writes it as it is. XML wraps it the way the spec's examples
do: ``<services><service>…</service></services>``, a nested list's items named by the
singular of its key (``<attributes><attribute>``, ``<values><value>``), booleans as
``true``/``false``, ``None`` as an empty element. ElementTree escapes the text; characters
XML 1.0 cannot carry at all are dropped.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from starlette.responses import Response

from servicekit.errors import PROBLEM_JSON

XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json"
#: Characters XML 1.0 cannot contain, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_SINGULAR = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
    "groups": "group",
}


class Format(StrEnum):
    XML = "xml"
    JSON = "json"


def format_of_path(path: str) -> Format:
    """The format a path asks for by its suffix; XML (what FixMyStreet speaks) otherwise."""
    return Format.JSON if path.lower().endswith(".json") else Format.XML


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with its offset, to the second, as the spec shows (2010-04-14T06:37:38-08:00)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat(timespec="seconds")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, key: str, value: Any) -> None:
    child = ET.SubElement(element, key)
    if value is None:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _fill(child, k, v)
    elif isinstance(value, list):
        item = _SINGULAR.get(key, "item")
        for v in value:
            if isinstance(v, dict):
                node = ET.SubElement(child, item)
                for k, w in v.items():
                    _fill(node, k, w)
            else:
                ET.SubElement(child, item).text = _text(v)
    else:
        child.text = _text(value)


def to_xml(
    document: dict[str, Any] | list[dict[str, Any]], *, root: str, item: str | None = None
) -> bytes:
    top = ET.Element(root)
    if isinstance(document, list):
        for entry in document:
            node = ET.SubElement(top, item or "item")
            for key, value in entry.items():
                _fill(node, key, value)
    else:
        for key, value in document.items():
            _fill(top, key, value)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        top, encoding="unicode"
    ).encode("utf-8")


def render(
    document: dict[str, Any] | list[dict[str, Any]],
    fmt: Format,
    *,
    root: str,
    item: str | None = None,
    status: int = 200,
) -> Response:
    if fmt is Format.JSON:
        return Response(
            json.dumps(document, ensure_ascii=False).encode("utf-8"),
            status_code=status,
            media_type=JSON_TYPE,
        )
    return Response(to_xml(document, root=root, item=item), status_code=status, media_type=XML_TYPE)


def render_errors(status: int, descriptions: list[str], fmt: Format) -> Response:
    """The spec's errors: ``[{"code": 400, "description": "…"}]`` or
    ``<errors><error><code>400</code><description>…</description></error></errors>``."""
    errors = [{"code": status, "description": d} for d in descriptions or ["Error"]]
    return render(errors, fmt, root="errors", item="error", status=status)


#: For OpenAPI: the JSON shapes, and XML as text.
XML_SCHEMA = {"type": "string", "description": "The same document as XML (see the spec)."}
ERRORS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}


def responses(ok: dict[str, Any] | None, *errors: tuple[int, str]) -> dict[int | str, Any]:
    """``responses=`` for an Open311 route: 200 with ``ok`` (JSON; XML as text) and the
    errors, each in both formats."""
    out: dict[int | str, Any] = {}
    if ok is not None:
        out[200] = {
            "description": "OK (the format the path's suffix names)",
            "content": {JSON_TYPE: {"schema": ok}, "text/xml": {"schema": XML_SCHEMA}},
        }
    for status, description in errors:
        content: dict[str, Any] = {
            JSON_TYPE: {"schema": ERRORS_SCHEMA},
            "text/xml": {"schema": XML_SCHEMA},
        }
        if status == 400:  # the gateway refuses a dot segment before Open311 is reached
            content[PROBLEM_JSON] = {"schema": {"$ref": "#/components/schemas/Problem"}}
            description += "; or the gateway's problem+json for a dot segment in the path"
        out[status] = {"description": description, "content": content}
    return out
