"""Form errors the GOV.UK way: one message per field, in the order of the page, shown in the
error summary (linked to the field) and beside the field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class FormErrors(dict[str, str]):
    """``{field name: message}``; ``anchors`` maps a field to its input's id when they differ
    (a radio group's first input has the group's name as id, so usually they do not)."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(items)
        self.anchors: dict[str, str | None] = {}

    def add(self, name: str, message: str, anchor: str | None = "") -> None:
        self.setdefault(name, message)
        if anchor != "":
            self.anchors[name] = anchor

    def anchor(self, name: str) -> str | None:
        return self.anchors.get(name, name)


def from_api(
    errors: Mapping[str, str],
    fields: Mapping[str, str],
    *,
    fallback: str | None = None,
    messages: Mapping[str, str] | None = None,
) -> FormErrors:
    """The API's field errors on this form's fields: ``fields`` maps an API field (dotted, as
    in problem+json ``errors``) to the form's input name. A message from ``messages`` (by input
    name) replaces the API's wording; an error on a field not on the form goes under
    ``fallback`` (or unlinked)."""
    out = FormErrors()
    for api_field, message in errors.items():
        name = fields.get(api_field)
        if name is None:
            # "attributes.pothole_depth" -> a field "attributes" maps the whole group
            for prefix, candidate in fields.items():
                if api_field.startswith(prefix + "."):
                    name = candidate + api_field[len(prefix) :].replace(".", "-")
                    break
        if name is None:
            out.add(fallback or api_field, message, anchor=fallback)
            continue
        out.add(name, (messages or {}).get(name) or _sentence(message))
    return out


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return "Enter a valid value"
    return message[0].upper() + message[1:]
