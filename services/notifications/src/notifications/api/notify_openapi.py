"""The OpenAPI description of GOV.UK Notify's API v2 as this service serves it at ``/v2``.

The ``/v2`` handlers read the raw request so that every error keeps Notify's shape, which
FastAPI cannot describe from their signatures; so the routes are left out of the generated
document and this description is added to it instead (:func:`add_to`, called from
``main.create_app``). Keep it in step with ``api/notify.py``; ``tests/test_notify_openapi.py``
checks that every ``/v2`` route is described.

Authentication is Notify's (the gateway passes ``Authorization`` through untouched on
``/v2``): an HS256 JWT signed with the API key's secret, ``iss`` the Notify service id,
``iat`` now. Errors are Notify's ``{"status_code", "errors": [{"error", "message"}]}``;
the few the gateway answers itself (a refused platform API key, its own rate limit) are
problem+json, as everywhere else.
"""

from __future__ import annotations

import copy
from typing import Any

from servicekit.problems import PROBLEM_SCHEMAS

SCHEME = "notifyJwt"
_REF = "#/components/schemas/"
_PROBLEM = {"application/problem+json": {"schema": {"$ref": _REF + "Problem"}}}
_NULL = {"type": "null"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, _NULL]}


_STR, _INT = {"type": "string"}, {"type": "integer"}
_UUID = {"type": "string", "format": "uuid"}

SCHEMAS: dict[str, Any] = {
    "NotifyError": {
        "title": "NotifyError",
        "type": "object",
        "description": "GOV.UK Notify's error body.",
        "properties": {
            "status_code": _INT,
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {
                            **_STR,
                            "description": "AuthError, ValidationError, "
                            "BadRequestError, NoResultFound or RateLimitError.",
                        },
                        "message": _STR,
                    },
                },
            },
        },
        "required": ["status_code", "errors"],
    },
    "NotifyEmailRequest": {
        "title": "NotifyEmailRequest",
        "type": "object",
        "required": ["email_address", "template_id"],
        "properties": {
            "email_address": _STR,
            "template_id": _UUID,
            "personalisation": {
                "type": "object",
                "description": "A value per placeholder; a list becomes bullets.",
            },
            "reference": {**_STR, "maxLength": 1000},
            "email_reply_to_id": _nullable(_STR),
            "one_click_unsubscribe_url": _nullable({**_STR, "description": "https only."}),
            "scheduled_for": _nullable(
                {**_STR, "description": "ISO 8601, at most 24 hours ahead (UTC if no offset)."}
            ),
            "sanitise_content_for": _nullable(
                {
                    "type": "array",
                    "items": _STR,
                    "description": "Placeholders whose values are shown as text only.",
                }
            ),
        },
        "additionalProperties": False,
    },
    "NotifySmsRequest": {
        "title": "NotifySmsRequest",
        "type": "object",
        "required": ["phone_number", "template_id"],
        "properties": {
            "phone_number": {**_STR, "description": "A UK mobile, in any usual form."},
            "template_id": _UUID,
            "personalisation": {"type": "object"},
            "reference": {**_STR, "maxLength": 1000},
            "sms_sender_id": _nullable(_STR),
            "scheduled_for": _nullable(
                {**_STR, "description": "ISO 8601, at most 24 hours ahead (UTC if no offset)."}
            ),
        },
        "additionalProperties": False,
    },
    "NotifyTemplateRef": {
        "title": "NotifyTemplateRef",
        "type": "object",
        "required": ["id", "version", "uri"],
        "properties": {"id": _STR, "version": _INT, "uri": _STR},
    },
    "NotifySent": {
        "title": "NotifySent",
        "type": "object",
        "required": ["id", "content", "uri", "template"],
        "properties": {
            "id": _STR,
            "reference": _nullable(_STR),
            "content": {
                "type": "object",
                "required": ["body"],
                "properties": {
                    "body": _STR,
                    "subject": _STR,
                    "from_email": _nullable(_STR),
                    "from_number": _nullable(_STR),
                    "one_click_unsubscribe_url": _nullable(_STR),
                },
            },
            "uri": _STR,
            "template": {"$ref": _REF + "NotifyTemplateRef"},
            "scheduled_for": _nullable(_STR),
            "sanitised_content": {
                "type": "object",
                "description": "Email only: each value sanitise_content_for changed, "
                "``{unsanitised, sanitised}``.",
            },
        },
    },
    "NotifyReceivedText": {
        "title": "NotifyReceivedText",
        "type": "object",
        "required": ["id", "user_number", "notify_number", "created_at", "service_id", "content"],
        "properties": {
            "id": _STR,
            "user_number": _STR,
            "notify_number": _STR,
            "created_at": _STR,
            "service_id": _STR,
            "content": _STR,
        },
    },
    "NotifyReceivedTextList": {
        "title": "NotifyReceivedTextList",
        "type": "object",
        "required": ["received_text_messages", "links"],
        "properties": {
            "received_text_messages": {
                "type": "array",
                "items": {"$ref": _REF + "NotifyReceivedText"},
            },
            "links": {
                "type": "object",
                "required": ["current"],
                "properties": {"current": _STR, "next": _STR},
            },
        },
    },
    "NotifyNotification": {
        "title": "NotifyNotification",
        "type": "object",
        "required": ["id", "type", "status", "body", "created_at"],
        "properties": {
            "id": _STR,
            "reference": _nullable(_STR),
            "email_address": _nullable(_STR),
            "phone_number": _nullable(_STR),
            **{f"line_{n}": _nullable(_STR) for n in range(1, 7)},
            "postcode": _nullable(_STR),
            "postage": _nullable(_STR),
            "type": {**_STR, "description": "email or sms."},
            "status": {
                **_STR,
                "description": "created, sending, delivered, "
                "temporary-failure, permanent-failure or technical-failure.",
            },
            "template": _nullable({"$ref": _REF + "NotifyTemplateRef"}),
            "body": _STR,
            "subject": _nullable(_STR),
            "created_at": _STR,
            "created_by_name": _nullable(_STR),
            "sent_at": _nullable(_STR),
            "completed_at": _nullable(_STR),
            "scheduled_for": _nullable(_STR),
            "one_click_unsubscribe": _nullable(_STR),
            "is_cost_data_ready": {"type": "boolean"},
            "cost_in_pounds": _nullable({"type": "number"}),
            "cost_details": {"type": "object"},
        },
    },
    "NotifyNotificationList": {
        "title": "NotifyNotificationList",
        "type": "object",
        "required": ["notifications", "links"],
        "properties": {
            "notifications": {"type": "array", "items": {"$ref": _REF + "NotifyNotification"}},
            "links": {
                "type": "object",
                "required": ["current"],
                "properties": {"current": _STR, "next": _STR},
            },
        },
    },
    "NotifyTemplate": {
        "title": "NotifyTemplate",
        "type": "object",
        "required": ["id", "type", "name", "version", "body", "personalisation"],
        "properties": {
            "id": _STR,
            "type": {**_STR, "description": "email or sms."},
            "name": _STR,
            "version": _INT,
            "created_at": _nullable(_STR),
            "updated_at": _nullable(_STR),
            "created_by": _STR,
            "body": _STR,
            "subject": _nullable(_STR),
            "letter_contact_block": _nullable(_STR),
            "postage": _nullable(_STR),
            "personalisation": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"required": {"type": "boolean"}},
                },
            },
        },
    },
    "NotifyTemplateList": {
        "title": "NotifyTemplateList",
        "type": "object",
        "required": ["templates"],
        "properties": {"templates": {"type": "array", "items": {"$ref": _REF + "NotifyTemplate"}}},
    },
    "NotifyPreviewRequest": {
        "title": "NotifyPreviewRequest",
        "type": "object",
        "properties": {"personalisation": {"type": "object"}},
    },
    "NotifyPreview": {
        "title": "NotifyPreview",
        "type": "object",
        "required": ["id", "type", "version", "body"],
        "properties": {
            "id": _STR,
            "type": _STR,
            "version": _INT,
            "body": _STR,
            "subject": _nullable(_STR),
            "html": _nullable(_STR),
            "postage": _nullable(_STR),
        },
    },
}

_ERROR = {"application/json": {"schema": {"$ref": _REF + "NotifyError"}}}


def _error(description: str, *, gateway_too: bool = False) -> dict[str, Any]:
    content = {**_ERROR, **(_PROBLEM if gateway_too else {})}
    return {"description": description, "content": copy.deepcopy(content)}


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + schema}}},
    }


def _operation(
    summary: str,
    description: str,
    responses: dict[str, Any],
    *,
    body: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    operation_id: str,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["GOV.UK Notify API v2"],
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "security": [{SCHEME: []}],
        "responses": {
            **responses,
            "400": _error(
                "ValidationError or BadRequestError (Notify's shape); or a problem "
                "the gateway answers",
                gateway_too=True,
            ),
            "401": _error(
                "AuthError: no token, or not the bearer scheme; or a platform API "
                "key (X-API-Key) the gateway refused (problem+json)",
                gateway_too=True,
            ),
            "403": _error(
                "AuthError: the token is not valid (unknown or revoked key, bad "
                "signature, no iss, iat more than 30 seconds off)"
            ),
            "429": _error(
                "RateLimitError (Notify's shape, per service and key type), or "
                "the gateway's rate limit (problem+json)",
                gateway_too=True,
            ),
        },
    }
    if body:
        operation["requestBody"] = {
            "required": body != "NotifyPreviewRequest",
            "content": {"application/json": {"schema": {"$ref": _REF + body}}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _parameter(where: str, name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter ``in`` the path (required) or the query (optional)."""
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _parameter("path", name, description, schema)


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _parameter("query", name, description, schema)


_NOT_FOUND = {"404": _error("NoResultFound")}
_TEMPLATE_ID = _path("template_id", "The template's id.", _UUID)


def document() -> dict[str, Any]:
    """A service-shaped OpenAPI document of ``/v2`` (paths, schemas, security scheme)."""
    statuses = [
        "created",
        "sending",
        "delivered",
        "temporary-failure",
        "permanent-failure",
        "technical-failure",
        "pending",
        "sent",
        "failed",
    ]
    paths: dict[str, Any] = {
        "/v2/notifications/email": {
            "post": _operation(
                "Send an email (GOV.UK Notify)",
                "Renders the template with the personalisation and queues the email. A test key "
                "sends nothing; a team key only to the service's team members.",
                {"201": _ok("NotifySent", "Accepted")},
                body="NotifyEmailRequest",
                operation_id="notify_send_email",
            )
        },
        "/v2/notifications/sms": {
            "post": _operation(
                "Send a text message (GOV.UK Notify)",
                "UK or international mobiles (stored as E.164); at most 918 characters once "
                "rendered.",
                {"201": _ok("NotifySent", "Accepted")},
                body="NotifySmsRequest",
                operation_id="notify_send_sms",
            )
        },
        "/v2/notifications/letter": {
            "post": _operation(
                "Letters are not sent by this platform",
                'Always 400 BadRequestError "Service is not allowed to send letters".',
                {},
                operation_id="notify_send_letter",
            )
        },
        "/v2/notifications/{notification_id}": {
            "get": _operation(
                "A notification (GOV.UK Notify)",
                "Seen only with a key of the same kind (test keys see only what test keys sent).",
                {"200": _ok("NotifyNotification", "The notification"), **_NOT_FOUND},
                parameters=[_path("notification_id", "The notification's id.", _UUID)],
                operation_id="notify_get_notification",
            )
        },
        "/v2/notifications": {
            "get": _operation(
                "Notifications, newest first (GOV.UK Notify)",
                "250 a page; follow ``links.next``. ``template_type`` and ``status`` may be "
                "repeated; ``failed`` and ``pending`` stand for the statuses Notify groups "
                "under them.",
                {"200": _ok("NotifyNotificationList", "A page of notifications")},
                parameters=[
                    _query(
                        "template_type",
                        "email, sms or letter.",
                        {"type": "string", "enum": ["email", "sms", "letter"]},
                    ),
                    _query(
                        "status",
                        "A status, or failed / pending / sent.",
                        {"type": "string", "enum": statuses},
                    ),
                    _query("reference", "The sender's own reference.", _STR),
                    _query("older_than", "A notification id: the page after it.", _STR),
                ],
                operation_id="notify_list_notifications",
            )
        },
        "/v2/template/{template_id}": {
            "get": _operation(
                "A template (GOV.UK Notify)",
                "Its current version, with each placeholder "
                "listed in ``personalisation`` as required.",
                {"200": _ok("NotifyTemplate", "The template"), **_NOT_FOUND},
                parameters=[_TEMPLATE_ID],
                operation_id="notify_get_template",
            )
        },
        "/v2/template/{template_id}/version/{version}": {
            "get": _operation(
                "A version of a template (GOV.UK Notify)",
                "Every edit makes a new version.",
                {"200": _ok("NotifyTemplate", "The template at that version"), **_NOT_FOUND},
                parameters=[
                    _TEMPLATE_ID,
                    _path(
                        "version",
                        "The version (1 is the first).",
                        {"type": "integer", "minimum": 1},
                    ),
                ],
                operation_id="notify_get_template_version",
            )
        },
        "/v2/templates": {
            "get": _operation(
                "The service's templates (GOV.UK Notify)",
                "Current versions.",
                {"200": _ok("NotifyTemplateList", "The templates")},
                parameters=[_query("type", "email or sms (anything else matches none).", _STR)],
                operation_id="notify_list_templates",
            )
        },
        "/v2/received-text-messages": {
            "get": _operation(
                "Received text messages, newest first (GOV.UK Notify)",
                "Texts sent to the service's numbers, 250 a page; follow ``links.next``.",
                {"200": _ok("NotifyReceivedTextList", "A page of received texts")},
                parameters=[_query("older_than", "A received text's id: the page after it.", _STR)],
                operation_id="notify_list_received_texts",
            )
        },
        "/v2/template/{template_id}/preview": {
            "post": _operation(
                "Preview a template (GOV.UK Notify)",
                "The rendered subject and body, and for an email the HTML.",
                {"200": _ok("NotifyPreview", "The preview"), **_NOT_FOUND},
                body="NotifyPreviewRequest",
                parameters=[_TEMPLATE_ID],
                operation_id="notify_preview_template",
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "GOV.UK Notify API v2", "version": "2"},
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "GOV.UK Notify's API key authentication: an HS256 JWT signed "
                    "with the key's secret (the last 36 characters of the key), "
                    "claims ``iss`` (the Notify service id, the 36 characters "
                    "before it) and ``iat`` (now, within 30 seconds). Any Notify "
                    "client library makes it. The gateway passes it through.",
                }
            },
        },
        "tags": [
            {
                "name": "GOV.UK Notify API v2",
                "description": "GOV.UK Notify's API, for Notify's clients unchanged "
                "(docs/notifications.md).",
            }
        ],
    }


def add_to(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the ``/v2`` paths, schemas, security scheme and tag to the service's ``spec``."""
    extra = document()
    spec.setdefault("paths", {}).update(extra["paths"])
    components = spec.setdefault("components", {})
    for name, schema in {**PROBLEM_SCHEMAS, **extra["components"]["schemas"]}.items():
        components.setdefault("schemas", {}).setdefault(name, schema)
    components.setdefault("securitySchemes", {}).update(extra["components"]["securitySchemes"])
    spec["tags"] = [*spec.get("tags", []), *extra["tags"]]
    return spec
