"""The vendored HSDS 3.0 and Open Referral UK 3.0 schemas (``tests/data/openreferral``) and
a checker that validates every ``/hsds`` answer against both, counting errors per standard.

Which schema an answer is checked against comes from the two OpenAPI documents (see the data
folder's README for the two 3.0 errata followed). JSON Schema 2020-12, with format checks:
``uuid``, ``email`` and ``date`` by jsonschema, ``uri`` (absolute) and ``date-time`` here.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DATA = Path(__file__).parent.parent / "data" / "openreferral"
#: folder -> (title, base URI of its schema/ folder, as its OpenAPI document names it)
STANDARDS = {
    "hsds-3.0": (
        "HSDS 3.0",
        "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/",
    ),
    "oruk-3.0": (
        "Open Referral UK 3.0",
        "https://raw.githubusercontent.com/openreferral/uk-profile/main/schema/",
    ),
}
#: shape -> (file, JSON pointer inside it)
SHAPES = {
    "service": ("compiled-service.json", ""),
    "service_list": ("compiled-service_list.json", ""),
    "organization": ("compiled-organization.json", ""),
    "organization_list": ("compiled-organization_list.json", ""),
    "service_at_location": ("compiled-service_at_location.json", ""),
    "service_at_location_list": ("compiled-service_at_location_list.json", ""),
    "location": ("compiled-service_at_location.json", "/properties/location"),
    "location_list": ("compiled-service_at_location_list.json", "/properties/location"),
    "taxonomy": ("taxonomy.json", ""),
    "taxonomy_term": ("taxonomy_term.json", ""),
    "page": ("openapi.json", "/components/schemas/Page"),
    "about": ("openapi.json", "/paths/~1/get/responses/200/content/application~1json/schema"),
}

FORMATS = FormatChecker()


@FORMATS.checks("uri", raises=ValueError)
def _absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme)) and bool(
        parts.netloc or parts.path
    )


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", value):
        return False
    datetime.fromisoformat(value.replace("z", "Z"))
    return True


def _load(standard: str, name: str) -> Any:
    path = DATA / standard / name
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return json.loads(gzip.decompress((path.parent / (name + ".gz")).read_bytes()))


@functools.cache
def _registry(standard: str) -> Registry:
    base = STANDARDS[standard][1]
    resources = []
    for name in {file for file, _ in SHAPES.values()}:
        upstream = name.removeprefix("compiled-")
        uri = base + ("compiled/" + upstream if name.startswith("compiled-") else upstream)
        resources.append(
            (uri, Resource.from_contents(_load(standard, name), default_specification=DRAFT202012))
        )
    return Registry().with_resources(resources)


@functools.cache
def validator(standard: str, shape: str) -> Draft202012Validator:
    name, pointer = SHAPES[shape]
    base = STANDARDS[standard][1]
    upstream = name.removeprefix("compiled-")
    uri = base + ("compiled/" + upstream if name.startswith("compiled-") else upstream)
    return Draft202012Validator(
        {"$ref": uri + "#" + pointer}, registry=_registry(standard), format_checker=FORMATS
    )


def errors(standard: str, shape: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message[:200]}"
        for e in validator(standard, shape).iter_errors(instance)
    ]


class Checker:
    """Validates answers and keeps the error count per standard (and a few examples)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({title: 0 for title, _ in STANDARDS.values()})
        self.examples: dict[str, list[str]] = {title: [] for title, _ in STANDARDS.values()}
        self.checked = 0

    def check(self, shape: str, instance: Any, *, where: str) -> None:
        self.checked += 1
        for standard, (title, _) in STANDARDS.items():
            found = errors(standard, shape, instance)
            self.counts[title] += len(found)
            if found and len(self.examples[title]) < 20:
                self.examples[title] += [f"{where}: {e}" for e in found[:3]]

    def page(self, item_shape: str, body: dict[str, Any], *, where: str) -> None:
        """An Open Referral page: the wrapper (``Page``) and each record of ``contents``."""
        self.check("page", body, where=where)
        assert isinstance(body.get("contents"), list), where
        for i, item in enumerate(body["contents"]):
            self.check(item_shape, item, where=f"{where} contents[{i}]")

    def report(self) -> str:
        return f"{self.checked} answers checked; errors: " + ", ".join(
            f"{title} {count}" for title, count in self.counts.items()
        )
