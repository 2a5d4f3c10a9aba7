"""Generate the published artefacts of the contracts from the event and topic registries.

    python -m contracts.generate                     # write schemas/ and asyncapi.json
    python -m contracts.generate --check             # exit 1 if they are out of date
    python -m contracts.generate --update-snapshots  # also snapshot events that have none
    python -m contracts.generate --update-snapshots --force   # re-snapshot every event

Outputs (paths relative to the ``contracts`` project directory):

* ``schemas/<context>/<EventName>.v<major>.json``: JSON Schema (draft 2020-12) of each
  event's data, ``$id`` = the event's CloudEvents ``dataschema``;
* ``schemas/envelope.json``: the Kafka binary-mode CloudEvents headers;
* ``asyncapi.json``: AsyncAPI 3.0 description of every topic, its dead-letter twin and
  the messages on them;
* ``snapshots/<context>/<EventName>.v<major>.json`` (only with ``--update-snapshots``): the
  schema as first released, which ``contracts.compat`` compares the current schema with.

Output is deterministic (sorted keys, two-space indent, trailing newline, no timestamps), so
regenerating a clean tree gives no diff.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from contracts import all_events
from contracts.envelope import CE_PREFIX, CONTENT_TYPE, SPEC_VERSION
from contracts.events import SCHEMA_BASE, TYPE_PREFIX, Event
from contracts.topics import TOPICS, Topic

JSONSchema = dict[str, Any]

#: The ``contracts`` project directory (holding ``src/``, ``schemas/``, ``asyncapi.json``).
PROJECT_DIR = Path(__file__).resolve().parents[2]
SCHEMAS = "schemas"
SNAPSHOTS = "snapshots"
ASYNCAPI = "asyncapi.json"
ENVELOPE = f"{SCHEMAS}/envelope.json"

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
LOCAL_BROKER = "127.0.0.1:9092"
TITLE = "Milton Keynes digital platform events"
HEADERS_COMPONENT = "CloudEventKafkaHeaders"
TRACEPARENT_PATTERN = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def dumps(document: Any) -> str:
    """The canonical text of a generated JSON file."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- JSON Schemas -------------------------------------------------------------------------


def schema_path(cls: type[Event]) -> str:
    """``<context>/<EventName>.v<major>.json``, under ``schemas/`` and ``snapshots/``."""
    return f"{cls.context}/{cls.event_name}.v{cls.major}.json"


def event_schema(cls: type[Event]) -> JSONSchema:
    """The JSON Schema of an event's data (the Kafka record value)."""
    schema = cls.model_json_schema()
    schema.update(
        {
            "$schema": DRAFT_2020_12,
            "$id": cls.dataschema(),
            "title": cls.event_name,
            "description": schema.get("description") or f"The {cls.event_name} event.",
            "x-cloudevents-type": cls.event_type(),
            "x-kafka-topic": cls.topic,
            "x-kafka-key": cls.aggregate_field,
        }
    )
    return schema


def _header(description: str, **schema: Any) -> JSONSchema:
    return {"type": "string", "description": description, **schema}


def envelope_schema() -> JSONSchema:
    """JSON Schema of the Kafka headers of a binary-mode CloudEvent (see ``envelope.py``)."""
    ce = CE_PREFIX
    return {
        "$schema": DRAFT_2020_12,
        "$id": f"{SCHEMA_BASE}/envelope.json",
        "title": "CloudEvents 1.0 Kafka binary-mode headers",
        "description": (
            "Every event is a CloudEvent in Kafka binary mode: the record value is the event "
            "data (JSON), each CloudEvents attribute is a `ce_<name>` header (UTF-8), "
            "`datacontenttype` is the `content-type` header and W3C trace context travels in "
            "`traceparent`/`tracestate`. The record key is the aggregate id, equal to "
            "`ce_subject`. Consumers ignore headers they do not know."
        ),
        "type": "object",
        "properties": {
            f"{ce}id": _header("Unique id of the event; consumers deduplicate on it.", minLength=1),
            f"{ce}source": _header("URI-reference of the producing service.", minLength=1),
            f"{ce}type": _header(
                f"Event type: `{TYPE_PREFIX}.<context>.<EventName>.v<major>`.", minLength=1
            ),
            f"{ce}specversion": _header("CloudEvents version.", const=SPEC_VERSION),
            f"{ce}time": _header("When the fact happened (RFC 3339).", format="date-time"),
            f"{ce}subject": _header("Aggregate id; also the Kafka record key."),
            f"{ce}dataschema": _header("URL of the JSON Schema of the data.", format="uri"),
            "content-type": _header("CloudEvents `datacontenttype`.", default=CONTENT_TYPE),
            "traceparent": _header("W3C trace context.", pattern=TRACEPARENT_PATTERN),
            "tracestate": _header("W3C trace state (vendor-specific)."),
        },
        "required": [f"{ce}id", f"{ce}source", f"{ce}type", f"{ce}specversion"],
        "additionalProperties": True,
    }


# --- AsyncAPI -----------------------------------------------------------------------------


def ident(name: str) -> str:
    """An AsyncAPI object key (``^[A-Za-z0-9_\\-]+$``) for a topic or event name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def message_key(cls: type[Event]) -> str:
    return ident(f"{cls.context}.{cls.event_name}.v{cls.major}")


def _rewrite_refs(node: Any, refs: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: refs.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, refs)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v, refs) for v in node]
    return node


def _without_ids(schema: JSONSchema) -> JSONSchema:
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def _component_schemas(cls: type[Event]) -> dict[str, JSONSchema]:
    """The event schema for ``components/schemas``, its ``$defs`` hoisted beside it.

    The ``$id`` is dropped: AsyncAPI resolves ``$ref`` against the document, so a schema
    with its own base URI would make ``#/components/...`` refer to the wrong place.
    """
    key = message_key(cls)
    schema = _without_ids(event_schema(cls))
    defs: dict[str, JSONSchema] = schema.pop("$defs", {})
    refs = {f"#/$defs/{name}": f"#/components/schemas/{key}_{ident(name)}" for name in defs}
    out = {key: _rewrite_refs(schema, refs)}
    for name, definition in defs.items():
        out[f"{key}_{ident(name)}"] = _rewrite_refs(definition, refs)
    return out


def _summary(cls: type[Event]) -> str:
    return (cls.__doc__ or cls.event_name).strip().splitlines()[0]


def _message(cls: type[Event]) -> JSONSchema:
    ce = CE_PREFIX
    schema = event_schema(cls)
    aggregate: JSONSchema = {"type": "string"}
    if "format" in schema["properties"][cls.aggregate_field]:
        aggregate["format"] = schema["properties"][cls.aggregate_field]["format"]
    return {
        "name": cls.event_type(),
        "title": cls.event_name,
        "summary": _summary(cls),
        "description": schema["description"],
        "contentType": CONTENT_TYPE,
        "tags": [{"name": cls.context}],
        "payload": {"$ref": f"#/components/schemas/{message_key(cls)}"},
        "headers": {
            "type": "object",
            "allOf": [{"$ref": f"#/components/schemas/{HEADERS_COMPONENT}"}],
            "properties": {
                f"{ce}type": {"type": "string", "const": cls.event_type()},
                f"{ce}dataschema": {"type": "string", "const": cls.dataschema()},
                f"{ce}subject": {
                    **aggregate,
                    "description": f"Aggregate id (`{cls.aggregate_field}`), equal to the key.",
                },
                "content-type": {"type": "string", "const": CONTENT_TYPE},
            },
        },
        "correlationId": {"$ref": "#/components/correlationIds/traceparent"},
        "bindings": {
            "kafka": {
                "key": {
                    **aggregate,
                    "description": (
                        f"Aggregate id (`{cls.aggregate_field}`), equal to `ce_subject`: the "
                        "events of one aggregate share a partition and stay in order."
                    ),
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _owner(topic: Topic) -> str:
    """The context that owns (publishes to) a topic: ``<context>.<aggregate>.v<major>``."""
    return topic.name.split(".", 1)[0]


def _channel(
    address: str,
    title: str,
    description: str,
    retention_ms: int,
    messages: list[type[Event]],
    partitions: int | None = None,
) -> JSONSchema:
    kafka: JSONSchema = {
        "topic": address,
        "topicConfiguration": {"retention.ms": retention_ms},
        "bindingVersion": KAFKA_BINDING_VERSION,
    }
    if partitions is not None:
        kafka["partitions"] = partitions
    return {
        "address": address,
        "title": title,
        "description": description,
        "servers": [{"$ref": "#/servers/local"}],
        "messages": {
            message_key(c): {"$ref": f"#/components/messages/{message_key(c)}"} for c in messages
        },
        "bindings": {"kafka": kafka},
    }


def _operation(
    channel_key: str, channel: JSONSchema, summary: str, description: str, context: str
) -> JSONSchema:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel_key}"},
        "summary": summary,
        "description": description,
        "tags": [{"name": context}],
        "messages": [
            {"$ref": f"#/channels/{channel_key}/messages/{key}"}
            for key in sorted(channel["messages"])
        ],
    }


def asyncapi_document(
    events: Sequence[type[Event]] | None = None, topics: Sequence[Topic] = TOPICS
) -> JSONSchema:
    """The AsyncAPI 3.0 document of every topic, its DLQ and the events on them."""
    events = all_events() if events is None else list(events)
    channels: JSONSchema = {}
    operations: JSONSchema = {}
    for topic in topics:
        owner = _owner(topic)
        on_topic = [c for c in events if c.topic == topic.name]
        key, dlq_key = ident(topic.name), ident(topic.dlq)
        channels[key] = _channel(
            topic.name,
            topic.name,
            topic.description,
            topic.retention_ms,
            on_topic,
            topic.partitions,
        )
        channels[dlq_key] = _channel(
            topic.dlq,
            topic.dlq,
            f"Dead letters of `{topic.name}`: records a consumer could not process, as "
            "they were received (key, value, CloudEvents headers), plus headers describing "
            "the error.",
            topic.dlq_retention_ms,
            on_topic,
        )
        operations[f"send_{key}"] = _operation(
            key,
            channels[key],
            f"{owner} publishes to {topic.name}.",
            f"Only the `{owner}` service publishes to this topic. {topic.description}",
            owner,
        )
        operations[f"send_{dlq_key}"] = _operation(
            dlq_key,
            channels[dlq_key],
            f"Consumers of {topic.name} dead-letter records.",
            f"Any consumer of `{topic.name}` sends here a record it cannot process.",
            owner,
        )

    schemas: JSONSchema = {HEADERS_COMPONENT: _without_ids(envelope_schema())}
    for cls in events:
        schemas.update(_component_schemas(cls))
    return {
        "asyncapi": "3.0.0",
        "id": "urn:uk:gov:milton-keynes:digital-platform:events",
        "info": {
            "title": TITLE,
            "version": version("contracts"),
            "description": (
                "Events exchanged by the Milton Keynes council digital platform's services. "
                "Every record is a CloudEvent 1.0 in Kafka binary mode: the value is the "
                "event data as JSON, the attributes are `ce_*` headers, the key is the "
                "aggregate id. Event types are "
                f"`{TYPE_PREFIX}.<context>.<EventName>.v<major>`; topics are "
                "`<context>.<aggregate>.v<major>`, each with a `<topic>.dlq` twin. "
                "Generated by `python -m contracts.generate`; do not edit."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": LOCAL_BROKER,
                "protocol": "kafka",
                "description": "Local development broker.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": {message_key(c): _message(c) for c in events},
            "correlationIds": {
                "traceparent": {
                    "description": (
                        "W3C trace context of the request that caused the event; the "
                        "consumer's span continues this trace."
                    ),
                    "location": "$message.header#/traceparent",
                }
            },
        },
    }


# --- Files --------------------------------------------------------------------------------


def render() -> dict[str, str]:
    """Every generated file: path relative to the project directory -> text."""
    files = {f"{SCHEMAS}/{schema_path(c)}": dumps(event_schema(c)) for c in all_events()}
    files[ENVELOPE] = dumps(envelope_schema())
    files[ASYNCAPI] = dumps(asyncapi_document())
    return dict(sorted(files.items()))


def stale(files: dict[str, str], root: Path = PROJECT_DIR) -> list[str]:
    """Files under ``schemas/`` that are no longer generated (events that were removed)."""
    found = (p.relative_to(root).as_posix() for p in (root / SCHEMAS).rglob("*.json"))
    return sorted(p for p in found if p not in files)


def out_of_date(root: Path = PROJECT_DIR) -> list[str]:
    """Generated files that are missing, different or stale in ``root``."""
    files = render()
    wrong = [
        path
        for path, text in files.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]
    return sorted(wrong + stale(files, root))


def write(root: Path = PROJECT_DIR) -> list[str]:
    """Write every generated file and delete stale schemas; return the paths changed."""
    files = render()
    changed = []
    for path, text in files.items():
        target = root / path
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        changed.append(path)
    for path in stale(files, root):
        (root / path).unlink()
        changed.append(path)
    for directory in sorted((root / SCHEMAS).rglob("*"), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return sorted(changed)


def update_snapshots(root: Path = PROJECT_DIR, *, force: bool = False) -> list[str]:
    """Snapshot every event that has none (every event with ``force``); return the paths."""
    written = []
    for cls in all_events():
        target = root / SNAPSHOTS / schema_path(cls)
        if target.exists() and not force:
            continue
        text = dumps(event_schema(cls))
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        written.append(target.relative_to(root).as_posix())
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a generated file is out of date",
    )
    parser.add_argument(
        "--update-snapshots",
        action="store_true",
        help="also write snapshots for events that have none",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --update-snapshots: overwrite existing snapshots too "
        "(only for a schema that was never released)",
    )
    parser.add_argument("--root", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.force and not args.update_snapshots:
        parser.error("--force only applies to --update-snapshots")
    if args.check:
        wrong = out_of_date(args.root)
        for path in wrong:
            print(f"out of date: {path}", file=sys.stderr)
        if wrong:
            print("run `make contracts` (python -m contracts.generate)", file=sys.stderr)
        return 1 if wrong else 0
    for path in write(args.root):
        print(f"wrote {path}")
    if args.update_snapshots:
        for path in update_snapshots(args.root, force=args.force):
            print(f"snapshot {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
