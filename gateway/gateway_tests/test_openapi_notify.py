"""The aggregated OpenAPI keeps an upstream-authenticated route's own security scheme
(GOV.UK Notify's JWT on /v2) and adds only the errors the gateway answers itself."""

from __future__ import annotations

from typing import Any

from gateway.openapi import merge
from gateway.routes import ROUTES, Upstream

NOTIFICATIONS = Upstream("notifications", "http://notifications.invalid")
NOTIFY_JWT = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def _service_spec() -> dict[str, Any]:
    error = {
        "description": "Notify's error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/E"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Notifications", "version": "1"},
        "paths": {
            "/v2/notifications/email": {
                "post": {
                    "security": [{"notifyJwt": []}],
                    "requestBody": {"content": {"application/json": {"schema": {}}}},
                    "responses": {"201": {"description": "Accepted"}, "403": error},
                }
            }
        },
        "components": {
            "schemas": {"E": {"type": "object"}},
            "securitySchemes": {"notifyJwt": NOTIFY_JWT},
        },
    }


def test_v2_keeps_notify_jwt_and_gains_only_gateway_errors() -> None:
    doc = merge([(NOTIFICATIONS, _service_spec())], ROUTES, title="t", version="1")
    assert doc["components"]["securitySchemes"]["notifyJwt"] == NOTIFY_JWT
    send = doc["paths"]["/v2/notifications/email"]["post"]
    assert send["security"] == [{"notifyJwt": []}]
    assert "x-roles" not in send  # not the gateway's roles: Notify's key decides
    assert set(send["responses"]) == {"201", "403", "408", "413", "429", "503", "504"}
    assert send["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/E"
    }  # the gateway does not answer 401/403 here
