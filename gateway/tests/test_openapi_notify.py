"""The aggregated OpenAPI publishes GOV.UK Notify's /v2 with its own security scheme."""

from __future__ import annotations

from typing import Any

from gateway.openapi import merge
from gateway.routes import ROUTES, Upstream

NOTIFICATIONS = Upstream("notifications", "http://notifications.invalid")


def _service_spec(paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "Notifications", "version": "1"},
            "paths": paths, "components": {"schemas": {}}}


def test_v2_is_documented_with_notify_jwt_and_notify_errors() -> None:
    doc = merge([(NOTIFICATIONS, _service_spec({}))], ROUTES, title="t", version="1")
    scheme = doc["components"]["securitySchemes"]["notifyJwt"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    send = doc["paths"]["/v2/notifications/email"]["post"]
    assert send["security"] == [{"notifyJwt": []}]
    assert "x-roles" not in send  # not the gateway's roles: Notify's key decides
    assert set(send["responses"]) >= {"201", "400", "401", "403", "429", "503", "504"}
    assert send["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NotifyError"}
    assert {"/v2/notifications", "/v2/notifications/{notification_id}", "/v2/templates",
            "/v2/template/{template_id}/preview"} <= set(doc["paths"])


def test_the_service_own_v2_document_wins() -> None:
    own = _service_spec({"/v2/templates": {"get": {"summary": "own",
                                                   "responses": {"200": {"description": "ok"}}}}})
    doc = merge([(NOTIFICATIONS, own)], ROUTES, title="t", version="1")
    assert [p for p in doc["paths"] if p.startswith("/v2")] == ["/v2/templates"]
    assert doc["paths"]["/v2/templates"]["get"]["summary"] == "own"
