"""Backward-compatibility check between two JSON Schemas of the same event major version.

Within one major version the data of an event may only grow: a consumer built against the
old schema must still understand every new record, and a consumer built against the new
schema must still understand every old record (a topic keeps old records for days and can be
replayed). :func:`breaking_changes` therefore reports, with a path to the place:

* a removed property;
* a changed type (a type no longer accepted), including ``integer`` -> ``number`` the
  wrong way round, a new or changed ``format``, removed ``enum`` values, a new or changed
  ``const`` and tighter bounds (``minLength``, ``maximum``, ``pattern``...);
* a property that became required, or a new required property;
* a nullable value that is no longer nullable;
* a changed ``x-kafka-topic`` or ``x-kafka-key`` (consumers would stop receiving events or
  lose their per-aggregate ordering).

Adding an optional property and widening (a new type in an ``anyOf``, a new enum value,
``null`` allowed, a dropped ``format`` or bound) are compatible. Local ``$ref`` (pydantic's
``#/$defs/...``), ``anyOf``/``oneOf`` (pydantic's ``Optional``), ``type`` lists and
recursive models are understood. Annotations (``title``, ``description``, ``default``,
``examples``) are ignored.
"""

from __future__ import annotations

from typing import Any

JSONSchema = dict[str, Any]

#: Root annotations describing how the event travels; changing them breaks consumers.
ROOT_ANNOTATIONS = ("x-kafka-topic", "x-kafka-key")
#: A higher value (or a value where there was none) narrows what is accepted.
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
#: A lower value (or a value where there was none) narrows what is accepted.
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
#: Any new or different value narrows what is accepted.
EXACT = ("pattern", "multipleOf")

_PY_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (type(None), "null"),
    (list, "array"),
    (dict, "object"),
)


def breaking_changes(old_schema: JSONSchema, new_schema: JSONSchema) -> list[str]:
    """What in ``new_schema`` breaks producers or consumers written against ``old_schema``.

    An empty list means the change is compatible within one major version.
    """
    return _Comparison(old_schema, new_schema).run()


def _json_type(value: Any) -> str:
    return next(name for py, name in _PY_TYPES if isinstance(value, py))


def _kind(schema: JSONSchema) -> str | None:
    """The JSON type a single-type schema accepts, or ``None`` if it accepts any."""
    if isinstance(schema.get("type"), str):
        return str(schema["type"])
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if values:
        kinds = {_json_type(v) for v in values}
        return kinds.pop() if len(kinds) == 1 else None
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _accepts(old_kind: str | None, new_kind: str | None) -> bool:
    """Whether a new schema of ``new_kind`` accepts every value of ``old_kind``'s type."""
    return new_kind is None or new_kind == old_kind or (old_kind, new_kind) == ("integer", "number")


def _allowed(schema: JSONSchema) -> list[Any] | None:
    """The only values a schema accepts (``const``/``enum``), or ``None`` if unrestricted."""
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, list) else ", ".join(map(repr, value))


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Comparison:
    def __init__(self, old_root: JSONSchema, new_root: JSONSchema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self._active: set[tuple[str, str]] = set()

    def run(self) -> list[str]:
        problems = [
            f"{name} changed from {self.old_root.get(name)!r} to {self.new_root.get(name)!r}"
            for name in ROOT_ANNOTATIONS
            if self.old_root.get(name) != self.new_root.get(name)
        ]
        return problems + self.schema(self.old_root, self.new_root, "")

    # -- resolution ---------------------------------------------------------------------

    @staticmethod
    def _resolve(schema: Any, root: JSONSchema) -> tuple[str | None, JSONSchema]:
        """Follow local ``$ref``s (keeping keywords beside them); also return the last one."""
        if isinstance(schema, bool):
            return None, {} if schema else {"not": {}}
        last: str | None = None
        seen: set[str] = set()
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#") or ref in seen:
                raise ValueError(f"unsupported or circular $ref {ref!r}")
            seen.add(ref)
            target: Any = root
            for part in filter(None, ref[1:].split("/")):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            last = ref
        return last, dict(schema)

    def _variants(self, schema: Any, root: JSONSchema) -> list[tuple[str | None, JSONSchema]]:
        """The alternatives a schema accepts (``anyOf``/``oneOf`` members, ``type`` lists),
        each with the ``$ref`` it came from."""
        ref, schema = self._resolve(schema, root)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                return [v for sub in schema[keyword] for v in self._variants(sub, root)]
        if isinstance(schema.get("type"), list):
            return [(ref, {**schema, "type": t}) for t in schema["type"]]
        if "allOf" in schema:
            return [(ref, self._merge_all_of(schema, root))]
        return [(ref, schema)]

    def _merge_all_of(self, schema: JSONSchema, root: JSONSchema) -> JSONSchema:
        """Flatten ``allOf`` (as older pydantic wrote ``$ref`` plus siblings) into one."""
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            _, part = self._resolve(sub, root)
            if "allOf" in part:
                part = self._merge_all_of(part, root)
            props = {**merged.get("properties", {}), **part.get("properties", {})}
            required = [*merged.get("required", []), *part.get("required", [])]
            merged = {**part, **merged}
            if props:
                merged["properties"] = props
            if required:
                merged["required"] = required
        return merged

    # -- comparison ---------------------------------------------------------------------

    def schema(self, old: Any, new: Any, path: str) -> list[str]:
        """Problems in ``new`` against ``old`` (both subschemas of their roots) at ``path``."""
        where = path or "<root>"
        new_variants = self._variants(new, self.new_root)
        problems: list[str] = []
        for old_ref, old_v in self._variants(old, self.old_root):
            old_kind = _kind(old_v)
            candidates = [(r, n) for r, n in new_variants if _accepts(old_kind, _kind(n))]
            if not candidates:
                new_kinds = sorted({str(_kind(n) or "any") for _, n in new_variants})
                if old_kind == "null":
                    problems.append(f"{where}: no longer nullable")
                else:
                    problems.append(
                        f"{where}: type changed from {old_kind or 'any'} to {' | '.join(new_kinds)}"
                    )
                continue
            # With several candidates (a union of models), the closest one decides.
            outcomes = [
                self._guarded(old_ref, old_v, new_ref, new_v, path) for new_ref, new_v in candidates
            ]
            closest = min(outcomes, key=len)
            problems.extend(closest)
        return list(dict.fromkeys(problems))

    def _guarded(
        self, old_ref: str | None, old: JSONSchema, new_ref: str | None, new: JSONSchema, path: str
    ) -> list[str]:
        """:meth:`_same_kind`, stopping where two recursive models meet themselves again."""
        if old_ref is None or new_ref is None:
            return self._same_kind(old, new, path)
        pair = (old_ref, new_ref)
        if pair in self._active:
            return []
        self._active.add(pair)
        try:
            return self._same_kind(old, new, path)
        finally:
            self._active.discard(pair)

    def _same_kind(self, old: JSONSchema, new: JSONSchema, path: str) -> list[str]:
        where = path or "<root>"
        problems = self._values(old, new, where) + self._bounds(old, new, where)
        kind = _kind(new)  # None: the new schema accepts anything, nothing more to check
        if kind == "object":
            problems += self._object(old, new, path)
        elif kind == "array":
            problems += self._array(old, new, path)
        return problems

    @staticmethod
    def _values(old: JSONSchema, new: JSONSchema, where: str) -> list[str]:
        problems = []
        old_allowed, new_allowed = _allowed(old), _allowed(new)
        if new_allowed is not None:
            removed = (
                None if old_allowed is None else [v for v in old_allowed if v not in new_allowed]
            )
            if "const" in new and removed != []:
                was = "any value" if old_allowed is None else _show(old_allowed)
                problems.append(f"{where}: const changed from {was} to {new['const']!r}")
            elif removed is None:
                problems.append(f"{where}: now restricted to enum {_show(new_allowed)}")
            elif removed:
                problems.append(f"{where}: enum values removed: {_show(removed)}")
        if "format" in new and new["format"] != old.get("format"):
            was = old.get("format", "none")
            problems.append(f"{where}: format changed from {was} to {new['format']}")
        return problems

    @staticmethod
    def _bounds(old: JSONSchema, new: JSONSchema, where: str) -> list[str]:
        problems = []
        for keyword in LOWER_BOUNDS + UPPER_BOUNDS + EXACT:
            was, now = old.get(keyword), new.get(keyword)
            if now is None or was == now:
                continue
            looser = was is not None and (
                (keyword in LOWER_BOUNDS and now < was) or (keyword in UPPER_BOUNDS and now > was)
            )
            if not looser:
                verb = "changed" if keyword in EXACT else "narrowed"
                problems.append(f"{where}: {keyword} {verb} from {was} to {now}")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            problems.append(f"{where}: items must now be unique")
        return problems

    def _object(self, old: JSONSchema, new: JSONSchema, path: str) -> list[str]:
        problems = []
        old_props: JSONSchema = old.get("properties", {})
        new_props: JSONSchema = new.get("properties", {})
        for name, old_prop in old_props.items():
            if name not in new_props:
                problems.append(f"{_at(path, name)}: property removed")
            else:
                problems += self.schema(old_prop, new_props[name], _at(path, name))
        old_required = set(old.get("required", []))
        for name in new.get("required", []):
            if name in old_required:
                continue
            if name in old_props:
                problems.append(f"{_at(path, name)}: became required")
            else:
                problems.append(f"{_at(path, name)}: new required property")
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if new_extra is False and old_extra is not False:
            problems.append(f"{path or '<root>'}: additional properties no longer allowed")
        elif isinstance(new_extra, dict):
            old_extra = old_extra if isinstance(old_extra, dict) else {}
            problems += self.schema(old_extra, new_extra, _at(path, "*"))
        return problems

    def _array(self, old: JSONSchema, new: JSONSchema, path: str) -> list[str]:
        problems = []
        if "items" in new:
            problems += self.schema(old.get("items", {}), new["items"], f"{path}[]")
        old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
        for i, new_item in enumerate(new_prefix):
            old_item = old_prefix[i] if i < len(old_prefix) else old.get("items", {})
            problems += self.schema(old_item, new_item, f"{path}[{i}]")
        return problems
