"""Each context says which events it has in its ``EVENTS`` tuple; nothing else registers an
event. An event class missing from every list would be undecodable by consumers (its type
unknown) and absent from the schemas: this fails first."""

from __future__ import annotations

import pytest

import contracts
from contracts import ALL_EVENTS, Event, UnknownEventType, all_events, event_class


def _subclasses(cls: type[Event]) -> set[type[Event]]:
    found: set[type[Event]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def test_every_event_class_is_listed_once() -> None:
    concrete = {
        c
        for c in _subclasses(Event)
        if not c.__name__.startswith("_")
        and c.__module__.startswith("contracts.")
        and ".tests" not in c.__module__
        and "test_" not in c.__module__
    }
    assert concrete == set(ALL_EVENTS), sorted(c.__name__ for c in concrete ^ set(ALL_EVENTS))
    assert len(ALL_EVENTS) == len(set(ALL_EVENTS))


def test_event_names_are_the_class_names_and_types_resolve() -> None:
    for cls in all_events():
        assert cls.event_name == cls.__name__
        assert event_class(cls.event_type()) is cls
    with pytest.raises(UnknownEventType):
        event_class("uk.gov.milton-keynes.nowhere.Nothing.v1")


def test_no_registry_module_or_register_decorator() -> None:
    assert not hasattr(contracts.events, "register")
    with pytest.raises(ModuleNotFoundError):
        __import__("contracts.registry")
