"""The AsyncAPI document: AsyncAPI 3.0, a channel per topic and DLQ, a message per event."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator, ValidationError
from pydantic import BaseModel, Field

from contracts import TOPICS, Envelope, Event, Topic, all_events, header_map
from contracts.generate import ASYNCAPI, PROJECT_DIR, asyncapi_document, message_key

KEY = re.compile(r"^[A-Za-z0-9_\-]+$")  # AsyncAPI 3.0 key pattern for channels, messages...


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads((PROJECT_DIR / ASYNCAPI).read_text())


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def by_address(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {ch["address"]: (key, ch) for key, ch in doc["channels"].items()}


def test_tree_document_is_the_generated_one(doc: dict[str, Any]) -> None:
    assert doc == json.loads(json.dumps(asyncapi_document()))


def test_is_asyncapi_3(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "Milton Keynes digital platform events"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", doc["info"]["version"])
    assert doc["servers"]["local"] == {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": "Local development broker.",
    }


def test_validates_with_an_asyncapi_3_object_model(doc: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own pydantic field-name warnings
        from asyncapi3 import AsyncAPI3

    AsyncAPI3.model_validate(doc)


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    found = list(refs(doc))
    assert found
    for ref in found:
        resolve(doc, ref)


def test_object_keys_follow_the_asyncapi_pattern(doc: dict[str, Any]) -> None:
    keys = [*doc["channels"], *doc["operations"], *doc["servers"]]
    for section in doc["components"].values():
        keys += list(section)
    for channel in doc["channels"].values():
        keys += list(channel["messages"])
    assert all(KEY.match(k) for k in keys), [k for k in keys if not KEY.match(k)]


def test_a_channel_per_topic_and_dead_letter_topic(doc: dict[str, Any]) -> None:
    addresses = by_address(doc)
    expected = {t.name for t in TOPICS} | {t.dlq for t in TOPICS}
    assert set(addresses) == expected
    for topic in TOPICS:
        _, channel = addresses[topic.name]
        assert channel["description"] == topic.description
        assert channel["bindings"]["kafka"]["topic"] == topic.name
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        _, dlq = addresses[topic.dlq]
        assert topic.name in dlq["description"]
        assert dlq["messages"] == channel["messages"]


def test_a_send_operation_per_channel(doc: dict[str, Any]) -> None:
    sends: dict[str, int] = {}
    for operation in doc["operations"].values():
        assert operation["action"] == "send"
        channel_ref = operation["channel"]["$ref"]
        sends[channel_ref] = sends.get(channel_ref, 0) + 1
        # AsyncAPI 3: an operation's messages are references to messages of its channel.
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/")
        channel = resolve(doc, channel_ref)
        assert len(operation["messages"]) == len(channel["messages"])
    assert sends == {f"#/channels/{key}": 1 for key in doc["channels"]}


def test_a_message_per_event_on_its_topic(doc: dict[str, Any]) -> None:
    events = all_events()
    messages = doc["components"]["messages"]
    assert set(messages) == {message_key(c) for c in events}
    addresses = by_address(doc)
    for cls in events:
        message = messages[message_key(cls)]
        assert message["name"] == cls.event_type()
        assert message["contentType"] == "application/json"
        assert message["payload"] == {"$ref": f"#/components/schemas/{message_key(cls)}"}
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert message["correlationId"] == {"$ref": "#/components/correlationIds/traceparent"}
        _, channel = addresses[cls.topic]
        assert channel["messages"][message_key(cls)] == {
            "$ref": f"#/components/messages/{message_key(cls)}"
        }
        on_other_topics = [
            ch for a, (_, ch) in addresses.items() if a not in (cls.topic, cls.topic + ".dlq")
        ]
        assert all(message_key(cls) not in ch["messages"] for ch in on_other_topics)


def _validator(doc: dict[str, Any], pointer: str) -> Draft202012Validator:
    """Validate against a schema inside the document, resolving its ``#/...`` refs."""
    return Draft202012Validator({**doc, "$ref": pointer})


@pytest.mark.parametrize("cls", all_events(), ids=lambda c: c.event_type())
def test_headers_of_a_real_event_match_the_message_headers(
    doc: dict[str, Any], cls: type[Event], make_event
) -> None:
    event = make_event(cls)
    envelope = Envelope(
        source="/citizen-services",
        type=cls.event_type(),
        subject=event.aggregate_id,
        dataschema=cls.dataschema(),
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    headers = dict(header_map(envelope.to_headers()))
    validator = _validator(doc, f"#/components/messages/{message_key(cls)}/headers")
    validator.validate(headers)
    for broken in (
        {**headers, "ce_type": "uk.gov.milton-keynes.other.Thing.v1"},
        {**headers, "ce_specversion": "0.3"},
        {k: v for k, v in headers.items() if k != "ce_id"},
    ):
        with pytest.raises(ValidationError):
            validator.validate(broken)


@pytest.mark.parametrize("cls", all_events(), ids=lambda c: c.event_type())
def test_payload_of_a_real_event_matches_the_message_payload(
    doc: dict[str, Any], cls: type[Event], make_event
) -> None:
    validator = _validator(doc, f"#/components/messages/{message_key(cls)}/payload")
    validator.validate(json.loads(make_event(cls).to_json()))
    with pytest.raises(ValidationError):
        validator.validate({})


class _Address(BaseModel):
    street: str
    postcode: str | None = None


class _Moved(Event):
    """A test-only event with a nested model (not registered)."""

    context: ClassVar[str] = "test-context"
    event_name: ClassVar[str] = "Moved"
    topic: ClassVar[str] = "test-context.thing.v1"
    aggregate_field: ClassVar[str] = "thing_id"

    thing_id: str
    address: _Address
    history: list[_Address] = Field(default_factory=list)


def test_nested_models_are_hoisted_into_components() -> None:
    topic = Topic(name="test-context.thing.v1", description="Things.", events=("Moved",))
    doc = json.loads(json.dumps(asyncapi_document([_Moved], [topic])))
    schemas = doc["components"]["schemas"]
    key = message_key(_Moved)
    assert f"{key}__Address" in schemas
    assert "$defs" not in schemas[key] and "$id" not in schemas[key]
    for ref in refs(doc):
        resolve(doc, ref)
    event = _Moved(
        thing_id="t1",
        address=_Address(street="Silbury Boulevard"),
        history=[_Address(street="Midsummer Boulevard", postcode="MK9 3HQ")],
    )
    validator = _validator(doc, f"#/components/messages/{key}/payload")
    validator.validate(json.loads(event.to_json()))
    with pytest.raises(ValidationError):
        validator.validate({"thing_id": "t1", "address": {"postcode": "MK9 3HQ"}})
