"""The event lists and topic registry, naming rules and forward compatibility of event JSON."""

from __future__ import annotations

import json
import re
from typing import ClassVar

import pytest

from contracts import TOPICS, Event, UnknownEventType, all_events, dlq_name, event_class
from contracts.citizen_services import ServicePublished
from contracts.topics import all_topic_names, topic

TYPE = re.compile(
    r"^uk\.gov\.milton-keynes\.(?P<context>[a-z][a-z0-9-]*)\."
    r"(?P<name>[A-Z][A-Za-z0-9]*)\.v(?P<major>[1-9][0-9]*)$"
)
TOPIC = re.compile(r"^(?P<context>[a-z][a-z0-9-]*)\.[a-z][a-z0-9-]*\.v(?P<major>[1-9][0-9]*)$")

EVENTS = all_events()
ids = [c.event_type() for c in EVENTS]


def test_registry_is_not_empty() -> None:
    assert EVENTS
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("cls", EVENTS, ids=ids)
def test_event_type_naming(cls: type[Event]) -> None:
    match = TYPE.match(cls.event_type())
    assert match, cls.event_type()
    assert match["context"] == cls.context
    assert match["name"] == cls.event_name
    assert cls.__name__ in (cls.event_name, f"{cls.event_name}V{cls.major}")
    assert int(match["major"]) == cls.major
    assert event_class(cls.event_type()) is cls
    assert cls.__doc__, "the docstring becomes the schema description"


@pytest.mark.parametrize("cls", EVENTS, ids=ids)
def test_event_topic_is_registered_and_named_for_its_context(cls: type[Event]) -> None:
    assert cls.topic in {t.name for t in TOPICS}
    match = TOPIC.match(cls.topic)
    assert match, cls.topic
    assert match["context"] == cls.context
    assert int(match["major"]) == cls.major
    assert cls.event_name in topic(cls.topic).events
    assert cls.aggregate_field in cls.model_fields


def test_topic_names_and_dlq() -> None:
    names = [t.name for t in TOPICS]
    assert len(set(names)) == len(names)
    for t in TOPICS:
        assert TOPIC.match(t.name), t.name
        assert t.dlq == dlq_name(t.name) == t.name + ".dlq"
        assert t.partitions >= 1 and t.retention_ms > 0 and t.dlq_retention_ms > 0
    assert set(all_topic_names()) == set(names) | {t.dlq for t in TOPICS}
    assert all_topic_names(include_dlq=False) == names
    with pytest.raises(KeyError):
        topic("nobody.nothing.v1")


def test_every_topic_event_name_exists_on_that_topic() -> None:
    by_topic = {(c.topic, c.event_name) for c in EVENTS}
    for t in TOPICS:
        for name in t.events:
            assert (t.name, name) in by_topic, f"{t.name} lists unknown event {name}"


def test_unknown_event_types_raise() -> None:
    with pytest.raises(UnknownEventType):
        event_class(ServicePublished.event_type().removesuffix(".v1") + ".v2")
    with pytest.raises(UnknownEventType):
        event_class("uk.gov.milton-keynes.citizen-services.NoSuchThing.v1")
    with pytest.raises(LookupError):
        event_class("")


def test_dataschema_url() -> None:
    assert ServicePublished.dataschema() == (
        "https://schemas.mk-digital.example/events/citizen-services/ServicePublished.v1.json"
    )


@pytest.mark.parametrize("cls", EVENTS, ids=ids)
def test_json_round_trip_and_aggregate_id(cls: type[Event], make_event) -> None:
    event = make_event(cls)
    assert cls.from_json(event.to_json()) == event
    assert cls.from_json(event.to_json().decode()) == event
    assert event.aggregate_id == str(getattr(event, cls.aggregate_field))


@pytest.mark.parametrize("cls", EVENTS, ids=ids)
def test_unknown_fields_are_ignored(cls: type[Event], make_event) -> None:
    """Forward compatibility: a consumer reads events from a newer minor schema."""
    event = make_event(cls)
    newer = {**json.loads(event.to_json()), "added_later": {"nested": [1, 2]}, "x": None}
    parsed = cls.from_json(json.dumps(newer))
    assert parsed == event
    assert "added_later" not in parsed.model_dump()


def test_events_are_immutable(make_event) -> None:
    event = make_event(ServicePublished)
    with pytest.raises(ValueError):
        event.name = "changed"


def test_unregistered_subclass_is_not_in_the_registry() -> None:
    class Draft(Event):
        """Not registered."""

        context: ClassVar[str] = "test-context"
        event_name: ClassVar[str] = "Draft"
        topic: ClassVar[str] = "test-context.draft.v1"
        aggregate_field: ClassVar[str] = "draft_id"

        draft_id: str

    assert Draft not in all_events()
    with pytest.raises(UnknownEventType):
        event_class(Draft.event_type())
