"""``servicekit.server.serve`` moves what start-up made out of the garbage collector's sight
(``gc.freeze``) before it serves, as ``python -m gateway`` does."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from servicekit import server
from servicekit.settings import ServiceSettings


def test_start_up_objects_are_frozen_before_a_service_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))

    def run(self: Any) -> None:
        calls.append("serve")

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(server, "exit_zero_on_sigterm", lambda: None)
    server.serve(FastAPI(), ServiceSettings(service_name="test"))
    assert calls == ["freeze", "serve"]
