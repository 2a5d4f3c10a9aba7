"""The notifications service's own FastAPI dependencies (servicekit's are in
``servicekit.deps``): its typed runtime and settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from notifications.config import Settings
from notifications.runtime import NotificationsRuntime


def get_runtime(request: Request) -> NotificationsRuntime:
    """``app.state.runtime``: what ``create_app`` built (caches, limiter, senders)."""
    runtime = request.app.state.runtime
    assert isinstance(runtime, NotificationsRuntime)
    return runtime


def get_settings(request: Request) -> Settings:
    return get_runtime(request).settings


RuntimeDep = Annotated[NotificationsRuntime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
