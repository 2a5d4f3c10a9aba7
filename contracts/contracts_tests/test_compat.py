"""Unit tests of contracts.compat.breaking_changes on old/new schema pairs."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from contracts.compat import breaking_changes


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def check(old: type[BaseModel], new: type[BaseModel]) -> list[str]:
    return breaking_changes(schema(old), schema(new))


class Base(BaseModel):
    request_id: uuid.UUID
    status: str
    count: int
    note: str | None = None
    occurred_at: datetime


def test_identical_schemas_are_compatible() -> None:
    assert check(Base, Base) == []


# --- compatible changes -------------------------------------------------------------------


def test_adding_an_optional_property_is_compatible() -> None:
    class New(Base):
        reason: str | None = None
        tags: list[str] = Field(default_factory=list)

    assert check(Base, New) == []


def test_widening_is_compatible() -> None:
    class Old(BaseModel):
        amount: int
        colour: Literal["red", "green"]
        code: str
        label: str = Field(max_length=10)
        at: datetime

    class New(BaseModel):
        amount: float  # integer -> number
        colour: Literal["red", "green", "blue"]  # a new enum value
        code: str | int | None  # new types in a union, nullable
        label: str = Field(max_length=20)  # looser bound
        at: str  # format dropped

    assert check(Old, New) == []


def test_annotations_are_ignored() -> None:
    class New(BaseModel):
        request_id: uuid.UUID = Field(description="Now documented.", title="Request")
        status: str = Field(examples=["open"])
        count: int
        note: str | None = Field(default=None, description="A note.")
        occurred_at: datetime

    assert check(Base, New) == []


def test_a_required_property_may_become_optional() -> None:
    class New(BaseModel):
        request_id: uuid.UUID
        status: str = "open"
        count: int
        note: str | None = None
        occurred_at: datetime

    assert check(Base, New) == []


# --- breaking changes ---------------------------------------------------------------------


def test_removed_property() -> None:
    class New(BaseModel):
        request_id: uuid.UUID
        count: int
        note: str | None = None
        occurred_at: datetime

    assert check(Base, New) == ["status: property removed"]


def test_renamed_property_is_a_removal_and_a_new_required_property() -> None:
    class New(BaseModel):
        request_id: uuid.UUID
        state: str
        count: int
        note: str | None = None
        occurred_at: datetime

    assert check(Base, New) == ["status: property removed", "state: new required property"]


def test_changed_type() -> None:
    class New(BaseModel):
        request_id: uuid.UUID
        status: int
        count: str
        note: str | None = None
        occurred_at: datetime

    assert check(Base, New) == [
        "status: type changed from string to integer",
        "count: type changed from integer to string",
    ]


def test_number_to_integer_is_narrowing() -> None:
    class Old(BaseModel):
        amount: float

    class New(BaseModel):
        amount: int

    assert check(Old, New) == ["amount: type changed from number to integer"]


def test_changed_format() -> None:
    class New(BaseModel):
        request_id: str  # format uuid dropped: fine
        status: uuid.UUID  # format added: narrowing
        count: int
        note: str | None = None
        occurred_at: uuid.UUID  # date-time -> uuid

    assert check(Base, New) == [
        "status: format changed from none to uuid",
        "occurred_at: format changed from date-time to uuid",
    ]


def test_enum_values_removed() -> None:
    class Colour(StrEnum):
        red = "red"
        green = "green"

    class Old(BaseModel):
        colour: Literal["red", "green", "blue"]
        paint: Colour

    class NarrowColour(StrEnum):
        red = "red"

    class New(BaseModel):
        colour: Literal["red", "green"]
        paint: NarrowColour

    assert check(Old, New) == [
        "colour: enum values removed: 'blue'",
        "paint: enum values removed: 'green'",
    ]


def test_enum_or_const_added_where_any_value_was_allowed() -> None:
    class Old(BaseModel):
        status: str
        kind: str

    class New(BaseModel):
        status: Literal["open", "closed"]
        kind: Literal["report"]

    assert check(Old, New) == [
        "status: now restricted to enum 'open', 'closed'",
        "kind: const changed from any value to 'report'",
    ]


def test_const_changed() -> None:
    class Old(BaseModel):
        kind: Literal["report"]

    class New(BaseModel):
        kind: Literal["request"]

    assert check(Old, New) == ["kind: const changed from 'report' to 'request'"]


def test_property_became_required() -> None:
    class New(BaseModel):
        request_id: uuid.UUID
        status: str
        count: int
        note: str | None
        occurred_at: datetime

    assert check(Base, New) == ["note: became required"]


def test_new_required_property() -> None:
    class New(Base):
        reason: str

    assert check(Base, New) == ["reason: new required property"]


def test_nullable_became_non_nullable() -> None:
    class New(BaseModel):
        request_id: uuid.UUID
        status: str
        count: int
        note: str = ""
        occurred_at: datetime

    assert check(Base, New) == ["note: no longer nullable"]


def test_type_removed_from_a_union() -> None:
    class Old(BaseModel):
        code: int | str

    class New(BaseModel):
        code: int

    assert check(Old, New) == ["code: type changed from string to integer"]


def test_tighter_bounds() -> None:
    class Old(BaseModel):
        name: str = Field(max_length=100)
        size: int = Field(ge=0)
        items: list[str]

    class New(BaseModel):
        name: str = Field(min_length=1, max_length=50, pattern="^[a-z]+$")
        size: int = Field(ge=1)
        items: list[str] = Field(max_length=3)

    assert check(Old, New) == [
        "name: minLength narrowed from None to 1",
        "name: maxLength narrowed from 100 to 50",
        "name: pattern changed from None to ^[a-z]+$",
        "size: minimum narrowed from 0 to 1",
        "items: maxItems narrowed from None to 3",
    ]


def test_forbidding_extra_properties() -> None:
    class New(Base, extra="forbid"):
        pass

    assert check(Base, New) == ["<root>: additional properties no longer allowed"]


# --- $defs, $ref, anyOf, arrays, recursion ------------------------------------------------


class AddressV1(BaseModel):
    street: str
    postcode: str | None = None


class AddressV2(BaseModel):
    street: int
    town: str


def test_breaks_inside_a_referenced_model_are_found() -> None:
    class Old(BaseModel):
        address: AddressV1
        previous: list[AddressV1]
        billing: AddressV1 | None = None

    class New(BaseModel):
        address: AddressV2
        previous: list[AddressV2]
        billing: AddressV2 | None = None

    problems = check(Old, New)
    assert "$defs" in schema(New)
    for path in ("address", "previous[]", "billing"):
        assert problems.count(f"{path}.street: type changed from string to integer") == 1
        assert f"{path}.postcode: property removed" in problems
        assert f"{path}.town: new required property" in problems
    assert len(problems) == 9


def test_additive_change_inside_a_referenced_model_is_compatible() -> None:
    class AddressV1b(AddressV1):
        uprn: str | None = None

    class Old(BaseModel):
        address: AddressV1
        billing: AddressV1 | None = None

    class New(BaseModel):
        address: AddressV1b
        billing: AddressV1b | None = None

    assert check(Old, New) == []


def test_inline_and_referenced_schemas_compare_equal() -> None:
    inline = {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}},
    }
    referenced = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"type": "object", "properties": {"b": {"type": "string"}}}},
    }
    assert breaking_changes(inline, referenced) == []
    assert breaking_changes(referenced, inline) == []


def test_type_lists_are_unions() -> None:
    old = {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}
    new = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert breaking_changes(old, new) == ["a: no longer nullable"]
    assert breaking_changes(new, old) == []


def test_array_items() -> None:
    class Old(BaseModel):
        codes: list[str]
        pairs: tuple[str, int]

    class New(BaseModel):
        codes: list[int]
        pairs: tuple[str, str]

    assert check(Old, New) == [
        "codes[]: type changed from string to integer",
        "pairs[1]: type changed from integer to string",
    ]


class NodeV1(BaseModel):
    name: str
    parent: NodeV1 | None = None
    children: list[NodeV1] = Field(default_factory=list)


class NodeV2(BaseModel):
    name: str
    parent: NodeV2 | None = None
    children: list[NodeV2] = Field(default_factory=list)
    weight: int | None = None


class NodeV3(BaseModel):
    name: int
    parent: NodeV3
    children: list[NodeV3] = Field(default_factory=list)


def test_recursive_models_terminate() -> None:
    class Old(BaseModel):
        root: NodeV1

    class New(BaseModel):
        root: NodeV2

    class Broken(BaseModel):
        root: NodeV3

    assert check(Old, New) == []
    assert check(NodeV1, NodeV2) == []
    assert check(Old, Broken) == [
        "root.name: type changed from string to integer",
        "root.parent: no longer nullable",
        "root.parent: became required",
    ]


def test_union_of_models_matches_the_closest_member() -> None:
    class Cat(BaseModel):
        kind: Literal["cat"]
        lives: int

    class Dog(BaseModel):
        kind: Literal["dog"]
        good: bool

    class DogV2(Dog):
        name: str | None = None

    class Old(BaseModel):
        pet: Cat | Dog

    class New(BaseModel):
        pet: Cat | DogV2

    class Broken(BaseModel):
        pet: Cat

    assert check(Old, New) == []
    assert check(Old, Broken) == [
        "pet.kind: const changed from 'dog' to 'cat'",
        "pet.good: property removed",
        "pet.lives: new required property",
    ]


def test_kafka_routing_annotations_must_not_change() -> None:
    old = {"type": "object", "x-kafka-topic": "a.b.v1", "x-kafka-key": "id"}
    new = {"type": "object", "x-kafka-topic": "a.c.v1", "x-kafka-key": "id"}
    assert breaking_changes(old, new) == ["x-kafka-topic changed from 'a.b.v1' to 'a.c.v1'"]


def test_remote_and_circular_refs_are_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        breaking_changes({"$ref": "https://example.com/s.json"}, {})
    loop = {"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}}
    with pytest.raises(ValueError, match="circular"):
        breaking_changes(loop, loop)


def test_all_of_is_flattened() -> None:
    old = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"type": "object", "properties": {"b": {"type": "string"}}}},
    }
    new = {
        "type": "object",
        "properties": {"a": {"allOf": [{"$ref": "#/$defs/A"}], "description": "An A."}},
        "$defs": {
            "A": {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]}
        },
    }
    assert breaking_changes(old, new) == [
        "a.b: type changed from string to integer",
        "a.b: became required",
    ]


def test_boolean_schemas() -> None:
    old = {"type": "object", "properties": {"a": True}}
    assert breaking_changes(old, {"type": "object", "properties": {"a": {}}}) == []
    assert breaking_changes(old, {"type": "object", "properties": {"a": {"type": "string"}}}) == [
        "a: type changed from any to string"
    ]
