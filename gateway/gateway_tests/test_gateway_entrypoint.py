"""``python -m gateway`` moves what start-up made out of the garbage collector's sight
(``gc.freeze``) before it serves: a full collection then walks only what requests made."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import gateway


def test_start_up_objects_are_frozen_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))

    def run(app: Any, **options: Any) -> None:
        calls.append("serve")
        assert options["http"] == "httptools" and options["proxy_headers"] is False

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    runpy.run_path(str(Path(gateway.__file__).parent / "__main__.py"), run_name="__main__")
    assert calls == ["freeze", "serve"]
