"""Log lines carry the request's X-Request-ID."""

from __future__ import annotations

import json
import logging

from servicekit.telemetry import JsonFormatter, request_id_var


def test_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    formatter = JsonFormatter("test")
    assert "request_id" not in json.loads(formatter.format(record))
    token = request_id_var.set("req-123")
    try:
        assert json.loads(formatter.format(record))["request_id"] == "req-123"
    finally:
        request_id_var.reset(token)
