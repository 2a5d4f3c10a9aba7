"""The base class of every event.

An event is a past-tense fact (``ServicePublished``), a pydantic model whose class variables
name its CloudEvents ``type`` (which carries the major version), its topic and how to find the
aggregate id that becomes the Kafka key and the CloudEvents ``subject``.

Rules inside one major version: add optional fields only; never remove, rename or retype a
field; consumers ignore fields they do not know (``extra="ignore"``). A breaking change is a
new class with ``major = 2`` and a new topic ``<context>.<aggregate>.v2``; the snapshot test
in ``contracts/contracts_tests`` fails when this rule is broken.

Which events exist is said once per context, in that module's ``EVENTS`` tuple; the package
(``contracts/__init__.py``) combines them (``all_events``, ``event_class``). A test fails
when an ``Event`` subclass is in no ``EVENTS``.
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
    #: Short name: the class name (``ServicePublished``), set for every subclass.
    event_name: ClassVar[str]
    #: Major version; part of ``event_type`` and of the topic name.
    major: ClassVar[int] = 1
    #: Kafka topic the event is published to.
    topic: ClassVar[str]
    #: Field holding the aggregate id: Kafka key and CloudEvents subject.
    aggregate_field: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_name" not in cls.__dict__:  # the class name, less a ``V<major>`` suffix
            suffix = f"V{cls.major}"
            name = cls.__name__
            cls.event_name = (
                name[: -len(suffix)] if cls.major > 1 and name.endswith(suffix) else name
            )

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
