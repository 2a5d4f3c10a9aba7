"""The event envelope: CloudEvents 1.0 attributes carried in Kafka *binary* mode.

In binary mode the event's data is the Kafka record value (JSON, ``datacontenttype``
``application/json``) and every CloudEvents attribute travels as a ``ce_<name>`` header
(https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md).
Trace context travels alongside as the W3C ``traceparent`` / ``tracestate`` headers, so a
consumer's span continues the trace of the request that caused the event.

The record key is the aggregate id (``subject``), which keeps events of one aggregate in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
CE_PREFIX = "ce_"
TRACE_HEADERS = ("traceparent", "tracestate")

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A Kafka record that is not a valid binary-mode CloudEvent."""


class Envelope(BaseModel):
    """CloudEvents 1.0 context attributes plus the trace context extension."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    specversion: str = SPEC_VERSION
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: str = CONTENT_TYPE
    dataschema: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    def to_headers(self) -> Headers:
        """Kafka headers for binary mode: ``ce_*`` attributes plus W3C trace headers."""
        headers: Headers = []
        for name in ("id", "source", "type", "specversion", "time", "subject", "dataschema"):
            value = getattr(self, name)
            if value is None:
                continue
            text = value.isoformat() if isinstance(value, datetime) else str(value)
            headers.append((CE_PREFIX + name, text.encode()))
        # The Kafka binding maps datacontenttype onto the record's content-type header.
        headers.append(("content-type", self.datacontenttype.encode()))
        for name in TRACE_HEADERS:
            value = getattr(self, name)
            if value:
                headers.append((name, value.encode()))
        return headers

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]] | None) -> Envelope:
        """Read the envelope back from Kafka headers; raise :class:`EnvelopeError` if invalid."""
        values: dict[str, Any] = {}
        for key, raw in headers or ():
            if key.startswith(CE_PREFIX):
                name = key[len(CE_PREFIX) :]
            elif key == "content-type":
                name = "datacontenttype"
            elif key in TRACE_HEADERS:
                name = key
            else:
                continue  # not part of the envelope; other headers may well be binary
            try:
                values[name] = raw.decode() if raw is not None else None
            except UnicodeDecodeError as exc:
                raise EnvelopeError(f"header {key!r} is not UTF-8") from exc
        missing = [n for n in ("id", "source", "type", "specversion") if not values.get(n)]
        if missing:
            raise EnvelopeError(f"missing CloudEvents attribute(s): {', '.join(missing)}")
        if values["specversion"] != SPEC_VERSION:
            raise EnvelopeError(f"unsupported specversion {values['specversion']!r}")
        known = set(cls.model_fields)
        try:
            return cls(**{k: v for k, v in values.items() if k in known and v is not None})
        except ValueError as exc:
            raise EnvelopeError(f"invalid CloudEvents attributes: {exc}") from exc


def header_map(headers: Iterable[tuple[str, bytes]] | None) -> Mapping[str, str]:
    """Headers as a str -> str mapping (last value wins); undecodable values are skipped."""
    out: dict[str, str] = {}
    for key, raw in headers or ():
        try:
            out[key] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError:
            continue
    return out
