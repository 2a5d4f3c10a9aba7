"""A catalogue entry's Open311 attribute definitions (what a citizen is asked when reporting;
a service with any is reportable) edited as a form: add, remove and reorder attributes, each
with its code, question, datatype, whether it is required and, for a list, its values. Works
without JavaScript: every button posts the whole form and the page comes back changed; only
*Save* writes, with the ``If-Match`` of the version opened."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from staff_console.auth import StaffUser, require_staff
from staff_console.clients import CatalogueApi
from webkit.api import ApiError
from webkit.app import Frontend, FrontendDep
from webkit.forms import FormErrors, from_api

router = APIRouter(prefix="/catalogue", dependencies=[Depends(require_staff)])

DATATYPES = (
    ("string", "Short text"),
    ("text", "Long text"),
    ("number", "Number"),
    ("datetime", "Date and time"),
    ("singlevaluelist", "Choose one from a list"),
    ("multivaluelist", "Choose any from a list"),
)
LISTS = ("singlevaluelist", "multivaluelist")
MAX_ATTRIBUTES = 50
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_ACTION = re.compile(r"^(up|down|remove)-(\d+)$")


def _values_text(values: list[dict[str, Any]]) -> str:
    return "\n".join(
        v["key"] if v["key"] == v["name"] else f"{v['key']}: {v['name']}" for v in values
    )


def _values_list(text: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, name = line.partition(":")
        key, name = key.strip(), name.strip()
        out.append({"key": key, "name": name if sep and name else key})
    return out


def _rows_of(attributes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The API's definitions (in their order) as the form's rows of text."""
    ordered = sorted(enumerate(attributes), key=lambda p: (p[1].get("order", 0), p[0]))
    return [
        {
            "code": str(a.get("code", "")),
            "description": str(a.get("description", "")),
            "hint": str(a.get("datatype_description") or ""),
            "datatype": str(a.get("datatype", "string")),
            "required": "yes" if a.get("required") else "",
            "values": _values_text(a.get("values") or []),
            "automated": str(a.get("automated") or ""),
            "protected": "yes" if a.get("protected") else "",
            "variable": "" if a.get("variable") is False else "yes",
        }
        for _, a in ordered
    ]


def _rows_from(form: Any) -> list[dict[str, str]]:
    count = str(form.get("count", "0"))
    rows = []
    for i in range(min(int(count) if count.isdigit() else 0, MAX_ATTRIBUTES)):
        rows.append(
            {
                name: str(form.get(f"attr-{i}-{name}", "")).strip()
                for name in (
                    "code",
                    "description",
                    "hint",
                    "datatype",
                    "required",
                    "values",
                    "automated",
                    "protected",
                    "variable",
                )
            }
        )
    return rows


def _to_api(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    out = []
    for order, row in enumerate(rows, start=1):
        attribute: dict[str, Any] = {
            "code": row["code"],
            "datatype": row["datatype"],
            "required": row["required"] == "yes",
            "order": order,
            "description": row["description"],
            "datatype_description": row["hint"] or None,
            "variable": row["variable"] == "yes",
            "values": _values_list(row["values"]) if row["datatype"] in LISTS else [],
            "protected": row["protected"] == "yes",
        }
        if row["automated"] in ("server_set", "hidden_field"):
            attribute["automated"] = row["automated"]
        out.append(attribute)
    return out


def _check(rows: list[dict[str, str]]) -> FormErrors:
    errors = FormErrors()
    seen: set[str] = set()
    for i, row in enumerate(rows):
        n = i + 1
        if not _CODE.match(row["code"]):
            errors.add(
                f"attr-{i}-code",
                f"Attribute {n}: enter a code of letters, digits, _ . or - (at most 64)",
            )
        elif row["code"] in seen:
            errors.add(f"attr-{i}-code", f"Attribute {n}: the code {row['code']} is used twice")
        seen.add(row["code"])
        if not row["description"]:
            errors.add(f"attr-{i}-description", f"Attribute {n}: enter the question asked")
        if row["datatype"] not in dict(DATATYPES):
            errors.add(f"attr-{i}-datatype", f"Attribute {n}: choose the kind of answer")
        values = _values_list(row["values"])
        if row["datatype"] in LISTS:
            keys = [v["key"] for v in values]
            if not values:
                errors.add(f"attr-{i}-values", f"Attribute {n}: enter the list's values")
            elif len(set(keys)) != len(keys):
                errors.add(f"attr-{i}-values", f"Attribute {n}: each value's key must be unique")
        elif values:
            errors.add(
                f"attr-{i}-values",
                f"Attribute {n}: only a list takes values (choose a list, or remove them)",
            )
    return errors


def _page(
    request: Request,
    frontend: Frontend,
    entry: dict[str, Any],
    etag: str,
    rows: list[dict[str, str]],
    *,
    errors: FormErrors | None = None,
    status_code: int = 200,
    theirs: list[dict[str, str]] | None = None,
) -> Response:
    return frontend.render(
        request,
        "catalogue/attributes.html",
        status_code=status_code,
        page_title=f"Report questions: {entry['name']}",
        entry=entry,
        etag=etag,
        rows=rows,
        datatypes=[{"value": v, "text": t} for v, t in DATATYPES],
        datatype_names=dict(DATATYPES),
        max_attributes=MAX_ATTRIBUTES,
        errors=errors,
        theirs=theirs,
    )


@router.get("/{service_id}/attributes")
async def attributes(
    service_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    entry, etag = await frontend.client(CatalogueApi, user).one(str(service_id))
    return _page(request, frontend, entry, etag, _rows_of(entry.get("attributes") or []))


@router.post("/{service_id}/attributes")
async def change_attributes(
    service_id: uuid.UUID, request: Request, frontend: FrontendDep, user: StaffUser
) -> Response:
    form = await request.form()
    rows = _rows_from(form)
    etag = str(form.get("etag", ""))
    action = str(form.get("action", "save"))
    api = frontend.client(CatalogueApi, user)
    entry, current = await api.one(str(service_id))
    moved = _ACTION.match(action)
    if action == "add":
        if len(rows) < MAX_ATTRIBUTES:
            rows.append(
                {
                    "code": "",
                    "description": "",
                    "hint": "",
                    "datatype": "string",
                    "required": "",
                    "values": "",
                    "automated": "",
                    "protected": "",
                    "variable": "yes",
                }
            )
        return _page(request, frontend, entry, etag, rows)
    if moved:
        verb, i = moved.group(1), int(moved.group(2))
        if i < len(rows):
            if verb == "remove":
                rows.pop(i)
            elif verb == "up" and i > 0:
                rows[i - 1], rows[i] = rows[i], rows[i - 1]
            elif verb == "down" and i + 1 < len(rows):
                rows[i + 1], rows[i] = rows[i], rows[i + 1]
        return _page(request, frontend, entry, etag, rows)
    errors = _check(rows)
    if errors:
        return _page(request, frontend, entry, etag, rows, errors=errors, status_code=400)
    try:
        await api.update(str(service_id), {"attributes": _to_api(rows)}, etag)
    except ApiError as exc:
        if exc.status in (412, 428):
            # someone saved the entry since this form was opened: keep this editor's rows,
            # show the saved ones beside them, and take the newest version for the next save
            conflict = FormErrors()
            conflict.add(
                "etag",
                "Someone else changed this service while you were editing its questions: "
                "check theirs below, then save again",
                None,
            )
            return _page(
                request,
                frontend,
                entry,
                current,
                rows,
                errors=conflict,
                status_code=409,
                theirs=_rows_of(entry.get("attributes") or []),
            )
        if exc.status not in (400, 409, 422):
            raise
        problem = from_api(exc.errors, {"attributes": "attr"}, fallback="etag")
        if not problem:
            problem.add("etag", exc.detail or exc.title, None)
        return _page(request, frontend, entry, etag, rows, errors=problem, status_code=400)
    return RedirectResponse(f"/catalogue/{service_id}?saved=questions+saved", status_code=303)
