"""GOV.UK Notify's API v2 at ``/v2``, for Notify's clients unchanged.

The gateway passes ``Authorization`` through untouched (``AuthMode.UPSTREAM``); this router
checks Notify's JWT itself. Every error answers in Notify's shape,
``{"status_code": 400, "errors": [{"error": "BadRequestError", "message": "..."}]}``, not
problem+json: request bodies are read here, not by FastAPI, so that holds for bad JSON too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from notifications.api.deps import get_runtime
from notifications.application import notify_read, notify_received, notify_send, templates
from notifications.application.notify_auth import Caller, authenticate
from notifications.domain import templating
from notifications.domain.notification import Channel
from notifications.domain.notify import (
    BadRequestError,
    NoResultFound,
    NotifyError,
    NotifyValidationError,
    parse_uuid,
    shown,
    unexpected,
)
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.notify_received import ReceivedTextRepository
from notifications.persistence.tables import Notification
from notifications.persistence.templates import TemplateRepository
from servicekit.deps import ReadDbDep
from servicekit.errors import NotFound
from servicekit.identity import (
    ASSERTION_HEADER,
    ISSUER,
    LEEWAY_SECONDS,
    REQUEST_CLAIM,
    request_binding,
)
from servicekit.identity import AUDIENCE as UNBOUND_AUDIENCE

#: Not in the OpenAPI document: GOV.UK Notify documents this API, and the platform's
#: authorisation matrix (tests/test_authorization_matrix.py) assumes the gateway's roles on
#: every documented operation, while /v2 authenticates Notify's own JWT.
router = APIRouter(prefix="/v2", tags=["GOV.UK Notify API v2"], include_in_schema=False)


async def notify_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotifyError)
    return JSONResponse(
        {
            "status_code": exc.status_code,
            "errors": [{"error": exc.error, "message": m} for m in exc.messages],
        },
        status_code=exc.status_code,
    )


async def current_caller(request: Request) -> Caller:
    """The key's service and key (cached: a read session is only opened on a miss)."""
    runtime = get_runtime(request)
    caller = await authenticate(
        runtime.notify_keys,
        request.headers.get("authorization"),
        leeway_seconds=runtime.settings.notify_token_leeway_seconds,
        cache=runtime.notify_key_cache,
    )
    await runtime.notify_rate_limiter.acquire(caller)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


_FORWARDED_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
_FORWARDED_PREFIX = re.compile(r"^(/[A-Za-z0-9._~\-]+)*$")


#: The JOSE header of every assertion the gateway signs (``{"alg":"HS256","typ":"JWT"}``).
_GATEWAY_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _gateway_claims(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of an assertion signed with ``secret`` (HS256, the gateway's header),
    issued by the gateway and not expired; else ``None``. Checked here directly (HMAC
    compared in constant time), as servicekit does on its fast path: PyJWT cost ~10 times
    more per /v2 request (measured)."""
    header, _, rest = token.partition(".")
    payload, dot, signature = rest.partition(".")
    if header != _GATEWAY_HEADER or not dot or "." in signature:
        return None
    expected = hmac.new(
        secret.encode(), f"{header}.{payload}".encode("ascii", "replace"), hashlib.sha256
    ).digest()
    try:
        if not hmac.compare_digest(_b64(signature), expected):
            return None
        claims = json.loads(_b64(payload))
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
        return None
    exp, iat, now = claims.get("exp"), claims.get("iat"), time.time()
    for value in (exp, iat):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
    assert isinstance(exp, int | float) and isinstance(iat, int | float)
    if exp <= now - LEEWAY_SECONDS or iat > now + LEEWAY_SECONDS:
        return None
    return claims


def _from_gateway(request: Request) -> bool:
    """Whether the request carries the gateway's identity assertion for this request (its
    signature, issuer, lifetime, and its binding to this service, method and raw path).
    On /v2 the caller is anonymous to the gateway, whose assertion then has no subject,
    which servicekit's principal check refuses; here only the gateway's signature
    matters: it says the ``X-Forwarded-*`` headers are the gateway's (it drops a client's
    own). Unbound assertions (tests') only in development and test."""
    verified = getattr(request.state, "from_gateway", None)
    if isinstance(verified, bool):
        return verified
    token = request.headers.get(ASSERTION_HEADER)
    verified = False
    if token:
        settings = get_runtime(request).settings
        claims = _gateway_claims(token, settings.identity_secret.get_secret_value())
        if claims is not None:
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            raw = request.scope.get("raw_path")
            path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
            if settings.service_name in audiences:
                verified = claims.get(REQUEST_CLAIM) == request_binding(request.method, path)
            else:
                verified = UNBOUND_AUDIENCE in audiences and not settings.production_like
    request.state.from_gateway = verified
    return verified


def _base(request: Request) -> str:
    """The public base URL the client called, for ``uri`` and ``links``: through the
    gateway, its ``X-Forwarded-Proto``, ``-Host`` and ``-Prefix`` (trusted only with the
    gateway's assertion); else ``NOTIFICATIONS_NOTIFY_PUBLIC_URL``; else this request's own."""
    headers = request.headers
    proto, host = headers.get("x-forwarded-proto"), headers.get("x-forwarded-host")
    prefix = headers.get("x-forwarded-prefix", "").rstrip("/")
    if (
        proto in ("http", "https")
        and host
        and _FORWARDED_HOST.match(host)
        and _FORWARDED_PREFIX.match(prefix)
        and _from_gateway(request)
    ):
        return f"{proto}://{host}{prefix}"
    configured = get_runtime(request).settings.notify_public_url
    return (configured or str(request.base_url)).rstrip("/")


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise BadRequestError("Invalid JSON supplied in POST data") from None
    if not isinstance(body, dict):
        raise BadRequestError("Invalid JSON supplied in POST data")
    return body


def _template_ref(base: str, template_id: Any, version: int | None) -> dict[str, Any]:
    return {"id": str(template_id), "version": version, "uri": f"{base}/v2/template/{template_id}"}


def notification_json(base: str, n: Notification) -> dict[str, Any]:
    email = n.channel == Channel.EMAIL
    final = n.completed_at
    return {
        "id": str(n.id),
        "reference": n.reference,
        "email_address": n.recipient if email else None,
        "phone_number": None if email else n.recipient,
        "line_1": None,
        "line_2": None,
        "line_3": None,
        "line_4": None,
        "line_5": None,
        "line_6": None,
        "postcode": None,
        "postage": None,
        "type": n.channel,
        "status": n.status,
        "template": (
            _template_ref(base, n.template_id, n.template_version) if n.template_id else None
        ),
        "body": n.body,
        "subject": n.subject if email else None,
        "created_at": _time(n.created_at),
        "created_by_name": None,
        "sent_at": _time(n.sent_at),
        "completed_at": _time(final),
        "scheduled_for": _time(n.scheduled_for),
        "one_click_unsubscribe": n.unsubscribe_url,
        "is_cost_data_ready": False,
        "cost_in_pounds": None,
        "cost_details": {},
    }


def template_json(base: str, view: templates.TemplateView) -> dict[str, Any]:
    t, v = view.template, view.version
    return {
        "id": str(t.id),
        "type": t.template_type,
        "name": v.name,
        "version": v.version,
        "created_at": _time(v.created_at if v.version == 1 else t.created_at),
        "updated_at": _time(v.created_at if v.version > 1 else None),
        "created_by": v.created_by or "",
        "body": v.body,
        "subject": v.subject,
        "letter_contact_block": None,
        "postage": None,
        "personalisation": {name: {"required": True} for name in view.placeholders},
    }


async def _send(request: Request, channel: Channel) -> JSONResponse:
    """No FastAPI dependencies on this path (measured: solving them, and the exit stack a
    generator dependency needs, was ~6% of an accepted email's CPU): the caller, then the
    unit of work (:func:`notify_send.accept`), in the order the dependencies ran."""
    caller = await current_caller(request)
    body = await _json_body(request)
    runtime = get_runtime(request)
    sent = await notify_send.accept(
        runtime.database,
        caller,
        channel,
        body,
        settings=runtime.settings,
        template_cache=runtime.notify_template_cache,
    )
    n, base = sent.notification, _base(request)
    nid = str(n["id"])
    content: dict[str, Any] = {"body": n["body"]}
    if channel is Channel.EMAIL:
        content.update(
            subject=n["subject"],
            from_email=caller.service.email_from,
            one_click_unsubscribe_url=n["unsubscribe_url"],
        )
    else:
        content.update(from_number=n["sender"] or caller.service.sms_sender)
    answer: dict[str, Any] = {
        "id": nid,
        "reference": n["reference"],
        "content": content,
        "uri": f"{base}/v2/notifications/{nid}",
        "template": _template_ref(base, n["template_id"], n["template_version"]),
        "scheduled_for": _time(sent.posted.scheduled_for),
    }
    if channel is Channel.EMAIL:
        answer["sanitised_content"] = sent.posted.sanitised_content
    return JSONResponse(answer, status_code=201)


@router.post("/notifications/email", status_code=201, summary="Send an email (GOV.UK Notify)")
async def send_email(request: Request) -> JSONResponse:
    return await _send(request, Channel.EMAIL)


@router.post("/notifications/sms", status_code=201, summary="Send a text message (GOV.UK Notify)")
async def send_sms(request: Request) -> JSONResponse:
    return await _send(request, Channel.SMS)


#: The routes :class:`SendFastPath` serves, by path.
SEND_PATHS = {"/v2/notifications/email": Channel.EMAIL, "/v2/notifications/sms": Channel.SMS}


class SendFastPath:
    """ASGI middleware, the innermost (inside servicekit's ``HttpMiddleware``, so the span,
    the request metrics and the request id are as for any route): ``POST
    /v2/notifications/{email,sms}`` go straight to :func:`_send`, without the router's
    match against every route of the app, the endpoint's wrappers and the exit stack
    (measured: ~10% of an accepted email's CPU in the service). Errors are handled by the
    app's own exception handlers (Notify's shape for :class:`NotifyError`), through
    Starlette's ``ExceptionMiddleware`` as on the normal path; ``scope["route"]`` is the
    route's, for the metrics' route label."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: list[BaseRoute],
        exception_handlers: dict[Any, Callable[..., Any]],
    ) -> None:
        self.app = app
        self._routes = routes
        self._handlers = exception_handlers
        self._fast: ASGIApp | None = None
        self._route_of: dict[str, BaseRoute] = {}

    def _build(self) -> ASGIApp:
        """Made on the first request, when every exception handler is registered.
        ``routes``: the Notify router's (the app's own list holds included routers)."""
        for route in self._routes:
            path = getattr(route, "path", None)
            if path in SEND_PATHS and "POST" in (getattr(route, "methods", None) or ()):
                self._route_of[path] = route
        handlers = {k: v for k, v in self._handlers.items() if k not in (500, Exception)}
        return ExceptionMiddleware(self._endpoint, handlers=handlers)

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response = await _send(request, SEND_PATHS[scope["path"]])
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope["path"] not in SEND_PATHS
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        fast = self._fast
        if fast is None:
            fast = self._fast = self._build()
        route = self._route_of[scope["path"]]
        scope["route"] = route
        scope["endpoint"] = getattr(route, "endpoint", None)
        await fast(scope, receive, send)


@router.post("/notifications/letter", summary="Letters are not sent by this platform")
async def send_letter(caller: CallerDep) -> JSONResponse:
    raise BadRequestError("Service is not allowed to send letters")


@router.get("/notifications/{notification_id}", summary="A notification (GOV.UK Notify)")
async def get_notification(
    request: Request, notification_id: str, db: ReadDbDep, caller: CallerDep
) -> JSONResponse:
    n = await notify_read.get_notification(NotificationRepository(db), caller, notification_id)
    return JSONResponse(notification_json(_base(request), n))


#: Notify's template types, in its order (its ``type`` enum); letters are never stored here.
TEMPLATE_TYPES = ("sms", "email", "letter")

#: The query arguments Notify's ``GET /v2/notifications`` takes; any other is refused, as
#: Notify's own request schema refuses it.
LIST_NOTIFICATIONS_ARGS = frozenset(
    {"template_type", "status", "reference", "older_than", "include_jobs"}
)


def _only_known(names: Iterable[str], known: AbstractSet[str]) -> None:
    problem = unexpected(set(names) - known)
    if problem:
        raise NotifyValidationError(problem)


@router.get("/notifications", summary="Notifications, newest first (GOV.UK Notify)")
async def list_notifications(request: Request, db: ReadDbDep, caller: CallerDep) -> JSONResponse:
    q = request.query_params
    _only_known(q.keys(), LIST_NOTIFICATIONS_ARGS)
    template_types, statuses = q.getlist("template_type"), q.getlist("status")
    reference, older_than = q.get("reference"), q.get("older_than")
    rows = await notify_read.list_notifications(
        NotificationRepository(db),
        caller,
        template_types=template_types,
        statuses=statuses,
        reference=reference,
        older_than=older_than,
        page_size=get_runtime(request).settings.notify_page_size,
    )
    base = _base(request)
    params = [
        *(("template_type", t) for t in template_types),
        *(("status", s) for s in statuses),
        *((("reference", reference),) if reference else ()),
    ]

    def link(extra: list[tuple[str, str]]) -> str:
        query = urlencode([*params, *extra])
        return f"{base}/v2/notifications" + (f"?{query}" if query else "")

    links = {"current": link([("older_than", older_than)] if older_than else [])}
    if rows:
        links["next"] = link([("older_than", str(rows[-1].id))])
    return JSONResponse(
        {"notifications": [notification_json(base, n) for n in rows], "links": links}
    )


async def _template(
    db: ReadDbDep, caller: Caller, template_id: str, version: int | None = None
) -> templates.TemplateView:
    tid = parse_uuid(template_id, "template_id")
    try:
        return await templates.get_template(
            TemplateRepository(db), template_id=tid, version=version, service_id=caller.service.id
        )
    except NotFound:
        raise NoResultFound("No result found") from None


@router.get("/template/{template_id}", summary="A template (GOV.UK Notify)")
async def get_template(
    request: Request, template_id: str, db: ReadDbDep, caller: CallerDep
) -> JSONResponse:
    return JSONResponse(template_json(_base(request), await _template(db, caller, template_id)))


@router.get(
    "/template/{template_id}/version/{version}", summary="A version of a template (GOV.UK Notify)"
)
async def get_template_version(
    request: Request, template_id: str, version: str, db: ReadDbDep, caller: CallerDep
) -> JSONResponse:
    # isascii: "²".isdigit() is True and int() would refuse it; a huge version is simply
    # not found (the template layer bounds it to the database's integer range)
    if not (version.isascii() and version.isdigit()) or len(version) > 30:
        raise NotifyValidationError(f"version {version} is not of type integer")
    return JSONResponse(
        template_json(_base(request), await _template(db, caller, template_id, int(version)))
    )


@router.get("/templates", summary="The service's templates (GOV.UK Notify)")
async def list_templates(request: Request, db: ReadDbDep, caller: CallerDep) -> JSONResponse:
    _only_known(request.query_params.keys(), {"type"})
    template_type = request.query_params.get("type")
    if template_type is not None and template_type not in TEMPLATE_TYPES:
        raise NotifyValidationError(
            f"type {shown(template_type)} is not one of [{', '.join(TEMPLATE_TYPES)}]"
        )
    views = await templates.list_templates(
        TemplateRepository(db), service_id=caller.service.id, template_type=template_type
    )
    base = _base(request)
    return JSONResponse({"templates": [template_json(base, v) for v in views]})


@router.post("/template/{template_id}/preview", summary="Preview a template (GOV.UK Notify)")
async def preview_template(
    request: Request, template_id: str, db: ReadDbDep, caller: CallerDep
) -> JSONResponse:
    body = await _json_body(request)
    view = await _template(db, caller, template_id)
    personalisation = notify_send.personalisation_of(body)
    try:
        shown = templates.preview(view, personalisation)
    except templating.MissingPersonalisation as exc:
        raise BadRequestError(f"Missing personalisation: {', '.join(exc.names)}") from None
    return JSONResponse(
        {
            "id": str(view.template.id),
            "type": view.template.template_type,
            "version": view.version.version,
            "body": shown.body,
            "subject": shown.subject,
            "html": shown.html,
            "postage": None,
        }
    )


@router.get("/received-text-messages", summary="Received text messages (GOV.UK Notify)")
async def list_received_texts(request: Request, db: ReadDbDep, caller: CallerDep) -> JSONResponse:
    q = request.query_params
    _only_known(q.keys(), {"older_than"})
    older_than = q.get("older_than")
    rows = await notify_received.list_received(
        ReceivedTextRepository(db),
        caller,
        older_than=older_than,
        page_size=get_runtime(request).settings.notify_page_size,
    )
    base = f"{_base(request)}/v2/received-text-messages"
    links = {"current": base + (f"?{urlencode({'older_than': older_than})}" if older_than else "")}
    if rows:
        links["next"] = f"{base}?{urlencode({'older_than': str(rows[-1].id)})}"
    return JSONResponse(
        {
            "received_text_messages": [notify_received.received_json(t, _time) for t in rows],
            "links": links,
        }
    )
