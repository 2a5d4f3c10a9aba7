"""Tracing and logging set-up: OpenTelemetry traces (FastAPI, httpx, SQLAlchemy, Kafka) and
JSON logs that carry the trace id. Nothing here runs at import time."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from servicekit.redact import scrub

#: The X-Request-ID of the request being handled (set by RequestIdMiddleware and the gateway).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_global_set = False
_httpx_instrumented = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, service, trace and span ids."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        span_context = trace.get_current_span().get_span_context()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "service": self.service_name,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(service_name: str, level: str = "INFO") -> None:
    """Route the root logger (and uvicorn's) through one JSON handler on stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_servicekit", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    handler._servicekit = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)  # logs parameters at DEBUG


class RecordWhenExported(Sampler):
    """Record spans only while the provider has somewhere to send them.

    With no exporter (the embedded default) every span would be built, filled with
    attributes and thrown away on every request and every event. A trace the caller marked
    sampled (``traceparent`` flag 01) is recorded and passed on sampled, so a caller's
    tracing works end to end through the platform. Dropped spans still get
    trace and span ids, so log lines keep their ``trace_id`` and ``traceparent`` still
    travels to Kafka and the next service. A processor added later (an OTLP exporter, or a
    test's in-memory exporter) turns recording on from the next span.
    """

    def __init__(self) -> None:
        self.provider: TracerProvider | None = None

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        trace_state = parent.trace_state if parent.is_valid else None  # carried on as is
        if parent.is_valid and parent.trace_flags.sampled:
            # the caller samples this trace: keep it sampled for whoever exports it next
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        multi = getattr(self.provider, "_active_span_processor", None)
        if multi is not None and not getattr(multi, "_span_processors", True):
            return SamplingResult(Decision.DROP, None, trace_state)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)

    def get_description(self) -> str:
        return "RecordWhenExported"


def spans_recorded(provider: Any = None) -> bool:
    """Whether spans are recorded: an SDK tracer provider (``provider``, else the global
    one) with a span processor (:class:`RecordWhenExported` drops spans otherwise). The
    relay and the consumer skip their per-record span work when not."""
    provider = provider or trace.get_tracer_provider()
    processors = getattr(provider, "_active_span_processor", None)
    if processors is None:
        return False  # the API's no-op provider
    return bool(getattr(processors, "_span_processors", True))


def make_tracer_provider(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """A tracer provider for one service. The first one made also becomes the global one
    (httpx instrumentation and library code use the global provider). Spans are recorded
    only while it has a processor (:class:`RecordWhenExported`)."""
    global _global_set, _httpx_instrumented
    sampler = RecordWhenExported()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}), sampler=sampler
    )
    sampler.provider = provider
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if not _global_set:
        trace.set_tracer_provider(provider)
        _global_set = True
    if not _httpx_instrumented:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        _httpx_instrumented = True
    return provider


def instrument_sqlalchemy(engine: Any, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=provider, enable_commenter=False
    )
