"""Shared fixtures of the contracts tests: a valid sample of any event class."""

from __future__ import annotations

import types
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

if TYPE_CHECKING:
    from contracts import Event


_SAMPLES: dict[Any, Any] = {
    uuid.UUID: uuid.UUID("6f1c1f0e-8a47-4d0b-9b8e-3f3c2b1a0d9e"),
    datetime: datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC),
    str: "sample",
    int: 3,
    float: 52.04,
    bool: True,
}


def sample_value(annotation: Any) -> Any:
    """A valid value for a field annotation (``X | None`` gets an ``X``)."""
    if annotation in _SAMPLES:
        return _SAMPLES[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return args[0]
    if origin in (types.UnionType, typing.Union):
        return sample_value(next(a for a in args if a is not type(None)))
    if origin in (list, tuple, set, frozenset):
        return [sample_value(args[0])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample_model(annotation)
    raise NotImplementedError(
        f"add a sample for {annotation!r} in contracts/contracts_tests/conftest.py"
    )


def sample_model(cls: type[BaseModel]) -> Any:
    """An instance of a model with every field, optional ones too, filled in."""
    return cls(**{name: sample_value(f.annotation) for name, f in cls.model_fields.items()})


@pytest.fixture
def make_event() -> Callable[[type[Event]], Event]:
    """``make_event(ServicePublished)``: a valid event with every field set."""
    return sample_model
