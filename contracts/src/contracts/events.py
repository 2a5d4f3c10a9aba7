"""The base class of every event and the registry of event types.

An event is a past-tense fact (``ServicePublished``), a pydantic model whose class variables
name its CloudEvents ``type`` (which carries the major version), its topic and how to find the
aggregate id that becomes the Kafka key and the CloudEvents ``subject``.

Rules inside one major version: add optional fields only; never remove, rename or retype a
field; consumers ignore fields they do not know (``extra="ignore"``). A breaking change is a
new class with ``major = 2`` and a new topic ``<context>.<aggregate>.v2``; the snapshot test
in ``contracts/tests`` fails when this rule is broken.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

TYPE_PREFIX = "uk.gov.milton-keynes"
SCHEMA_BASE = "https://schemas.mk-digital.example/events"


class Event(BaseModel):
    """Base class of all contract events."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: Bounded context that owns the event, e.g. ``citizen-services``.
    context: ClassVar[str]
    #: Short name, the class name by convention (``ServicePublished``).
    event_name: ClassVar[str]
    #: Major version; part of ``event_type`` and of the topic name.
    major: ClassVar[int] = 1
    #: Kafka topic the event is published to.
    topic: ClassVar[str]
    #: Field holding the aggregate id: Kafka key and CloudEvents subject.
    aggregate_field: ClassVar[str]

    @classmethod
    def event_type(cls) -> str:
        """The CloudEvents ``type``: ``uk.gov.milton-keynes.<context>.<Name>.v<major>``."""
        return f"{TYPE_PREFIX}.{cls.context}.{cls.event_name}.v{cls.major}"

    @classmethod
    def dataschema(cls) -> str:
        """The CloudEvents ``dataschema``: where the generated JSON Schema is published."""
        return f"{SCHEMA_BASE}/{cls.context}/{cls.event_name}.v{cls.major}.json"

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_field))

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Any:
        return cls.model_validate_json(data)


class UnknownEventType(LookupError):
    """A CloudEvents type that no contract defines (or a version nobody publishes)."""


_REGISTRY: dict[str, type[Event]] = {}


def register(cls: type[Event]) -> type[Event]:
    """Class decorator adding an event to the registry (its type must be unique)."""
    key = cls.event_type()
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise ValueError(f"event type {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def event_class(event_type: str) -> type[Event]:
    """The class for a CloudEvents type, or :class:`UnknownEventType`."""
    # Import the modules that define events so the registry is complete.
    from contracts import registry  # noqa: F401

    try:
        return _REGISTRY[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def all_events() -> list[type[Event]]:
    from contracts import registry  # noqa: F401

    return sorted(_REGISTRY.values(), key=lambda c: c.event_type())
