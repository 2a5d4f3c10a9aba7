"""The CloudEvents envelope in Kafka binary mode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import Envelope, EnvelopeError, header_map
from contracts.citizen_services import ServicePublished

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def full_envelope() -> Envelope:
    return Envelope(
        id="8d3f0c52-5b1a-4f0e-9d7c-2a6b1e4c9f10",
        source="/citizen-services",
        type=ServicePublished.event_type(),
        time=datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC),
        subject="6f1c1f0e-8a47-4d0b-9b8e-3f3c2b1a0d9e",
        dataschema=ServicePublished.dataschema(),
        traceparent=TRACEPARENT,
        tracestate="mk=1",
    )


def test_round_trip_through_headers() -> None:
    envelope = full_envelope()
    assert Envelope.from_headers(envelope.to_headers()) == envelope


def test_round_trip_of_a_minimal_envelope() -> None:
    envelope = Envelope(source="/notifications", type="uk.gov.milton-keynes.x.Y.v1")
    back = Envelope.from_headers(envelope.to_headers())
    assert back == envelope
    assert back.subject is None and back.traceparent is None


def test_binary_mode_header_names() -> None:
    headers = dict(full_envelope().to_headers())
    assert set(headers) == {
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_specversion",
        "ce_time",
        "ce_subject",
        "ce_dataschema",
        "content-type",
        "traceparent",
        "tracestate",
    }
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_time"] == b"2025-03-14T09:26:53.589793+00:00"
    assert all(isinstance(v, bytes) for v in headers.values())


def test_unknown_headers_are_ignored() -> None:
    envelope = full_envelope()
    headers = [*envelope.to_headers(), ("ce_partitionkey", b"x"), ("x-error", b"\xff")]
    assert Envelope.from_headers(headers) == envelope


def test_missing_id_is_rejected() -> None:
    headers = [(k, v) for k, v in full_envelope().to_headers() if k != "ce_id"]
    with pytest.raises(EnvelopeError, match="id"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("headers", [None, []])
def test_no_headers_are_rejected(headers: list[tuple[str, bytes]] | None) -> None:
    with pytest.raises(EnvelopeError, match="missing"):
        Envelope.from_headers(headers)


def test_wrong_specversion_is_rejected() -> None:
    headers = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in full_envelope().to_headers()]
    with pytest.raises(EnvelopeError, match="specversion"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("name", ["ce_source", "ce_type", "traceparent", "content-type"])
def test_non_utf8_envelope_header_is_rejected(name: str) -> None:
    headers = [(k, b"\xff\xfe" if k == name else v) for k, v in full_envelope().to_headers()]
    with pytest.raises(EnvelopeError, match="UTF-8"):
        Envelope.from_headers(headers)


def test_invalid_time_is_rejected() -> None:
    headers = [(k, b"yesterday" if k == "ce_time" else v) for k, v in full_envelope().to_headers()]
    with pytest.raises(EnvelopeError, match="invalid"):
        Envelope.from_headers(headers)


def test_header_map_skips_undecodable_values() -> None:
    headers = [("ce_id", b"1"), ("bad", b"\xff"), ("ce_id", b"2"), ("empty", b"")]
    assert header_map(headers) == {"ce_id": "2", "empty": ""}
    assert header_map(None) == {}
