"""The service's OpenAPI document describes every GOV.UK Notify /v2 route."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute

from notifications.api import notify
from notifications.config import Settings
from notifications.main import create_app


def test_every_v2_route_is_described_with_notify_jwt(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/n.db"))
    doc = app.openapi()
    routes = {
        (method.lower(), route.path)
        for route in notify.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    described = {
        (method, path)
        for path, item in doc["paths"].items()
        if path.startswith("/v2/")
        for method in item
    }
    assert described == routes
    scheme = doc["components"]["securitySchemes"]["notifyJwt"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    send = doc["paths"]["/v2/notifications/email"]["post"]
    assert send["security"] == [{"notifyJwt": []}]
    assert send["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NotifyError"
    }
    refs = {v.rsplit("/", 1)[1] for v in _refs(doc["paths"])}
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])
    assert app.openapi() is doc  # built once


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
