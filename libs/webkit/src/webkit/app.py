"""A front-end in a few lines: :func:`create_frontend` gives a FastAPI app with what every
front-end needs, and the front-end adds its own routers (thin views over its API clients).

- ``/assets``: GOV.UK Frontend and webkit's scripts (:mod:`webkit.assets`), long-cached;
- the session cookie (:mod:`webkit.session`), security headers (:mod:`webkit.security`),
  gzip, ``Server-Timing`` (:mod:`webkit.timing`);
- one pooled keep-alive client to the gateway for every request (httpx over aiohttp,
  :mod:`webkit.transport`), and a cache of the API's public answers
  (:class:`webkit.api.ResponseCache`) for anonymous calls;
- CSRF: every POST must carry the session's ``csrf_token`` (a 400 page otherwise);
- sign-in (``/sign-in`` → the provider → ``/auth/callback``) and sign-out (``/sign-out``:
  GET asks, POST signs out), :func:`signed_in_user` and :data:`CurrentUser` for views;
- error pages in the Design System's words (404, 400, 403, 500, 503), and an API 401 or an
  expired session sends the browser to sign in again;
- :meth:`Frontend.render` with the page context (navigation, sign-in state, CSRF token).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from webkit.api import ApiClient, ApiError, ResponseCache
from webkit.assets import GOVUK_FRONTEND_VERSION, assets_app
from webkit.forms import FormErrors
from webkit.oidc import OidcClient, OidcError
from webkit.security import SecurityHeaders
from webkit.session import CSRF_FIELD, Session, SessionMiddleware, session_of
from webkit.settings import FrontendSettings
from webkit.timing import ServerTiming
from webkit.transport import AiohttpTransport

log = logging.getLogger(__name__)
C = TypeVar("C", bound=ApiClient)


@dataclass(frozen=True)
class Link:
    text: str
    href: str
    #: Shown only to a signed-in user with any of these roles (none: shown to everyone). What
    #: a link's page allows is still checked by the page itself.
    roles: tuple[str, ...] = ()

    def shown_to(self, user: User | None) -> bool:
        return not self.roles or (user is not None and user.has_any(*self.roles))


@dataclass(frozen=True)
class User:
    subject: str
    token: str
    roles: frozenset[str] = frozenset()

    def has_any(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


#: The session of the page being rendered (each request runs in its own context).
_rendering: ContextVar[Session] = ContextVar("webkit_rendering")


class SignInRequired(Exception):
    pass


class CsrfFailed(Exception):
    pass


DEFAULT_FOOTER = (
    Link("Accessibility statement", "/accessibility"),
    Link("Privacy notice", "/privacy"),
    Link("Cookies", "/cookies"),
)


class Frontend:
    """One front-end's shared objects (on ``app.state.frontend``)."""

    def __init__(
        self,
        settings: FrontendSettings,
        *,
        site_name: str,
        service_name: str,
        templates: Path,
        navigation: Sequence[Link],
        footer_links: Sequence[Link] = DEFAULT_FOOTER,
        home: Callable[[User | None], str] | None = None,
    ) -> None:
        self.settings = settings
        self.home = home
        self.site_name = site_name
        self.service_name = service_name
        self.navigation = tuple(navigation)
        self.footer_links = tuple(footer_links)
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(templates), PackageLoader("webkit")]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=False,
            lstrip_blocks=False,
            enable_async=False,
            # compiled once, never looked at again on disk (a template edit needs a restart)
            auto_reload=False,
        )
        # macros imported without context (components.html) reach the CSRF token through it
        self.env.globals["csrf_token"] = lambda: _rendering.get().csrf_token()
        self.gateway: httpx.AsyncClient | None = None
        #: The API's public answers to anonymous calls (never a call with a user's token).
        self.cache = ResponseCache()
        self.oidc: OidcClient | None = None
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.gateway = httpx.AsyncClient(
            base_url=self.settings.gateway_url.rstrip("/"),
            timeout=self.settings.gateway_timeout_seconds,
            transport=AiohttpTransport(max_connections=64),
        )
        self._http = httpx.AsyncClient(timeout=self.settings.oidc_timeout_seconds)
        self.oidc = OidcClient(self.settings, self._http)

    async def stop(self) -> None:
        for client in (self.gateway, self._http):
            if client is not None:
                await client.aclose()

    def client(self, cls: type[C], user: User | None = None) -> C:
        """A resource client (``webkit.api.ApiClient`` subclass) calling the gateway as
        ``user`` (anonymous without one: then its GETs go through :attr:`cache`)."""
        assert self.gateway is not None, "the front-end has not started"
        if user is not None:
            return cls(self.gateway, user.token)
        return cls(self.gateway, cache=self.cache)

    def render(
        self,
        request: Request,
        template: str,
        *,
        status_code: int = 200,
        errors: FormErrors | None = None,
        **context: Any,
    ) -> HTMLResponse:
        session = session_of(request)
        path = request.url.path
        user = signed_in_user(request)
        navigation = [
            {"text": link.text, "href": link.href, "current": _current(link.href, path)}
            for link in self.navigation
            if link.shown_to(user)
        ]
        _rendering.set(session)
        html = self.env.get_template(template).render(
            request_path=path,
            site_name=self.site_name,
            service_name=self.service_name,
            navigation=navigation,
            home_href=self.home(user) if self.home else "/",
            footer_links=self.footer_links,
            signed_in=user is not None,
            asset_version=GOVUK_FRONTEND_VERSION,
            errors=errors or None,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def error_page(
        self, request: Request, status: int, heading: str, *paragraphs: str
    ) -> HTMLResponse:
        return self.render(
            request,
            "webkit/error.html",
            status_code=status,
            page_title=heading,
            heading=heading,
            paragraphs=paragraphs,
        )


def _current(href: str, path: str) -> bool:
    return path == href if href == "/" else path == href or path.startswith(href + "/")


def frontend_of(request: Request) -> Frontend:
    frontend: Frontend = request.app.state.frontend
    return frontend


def signed_in_user(request: Request) -> User | None:
    session = session_of(request)
    subject, token, expires = session.get("sub"), session.get("token"), session.get("exp")
    if not isinstance(subject, str) or not isinstance(token, str):
        return None
    if not isinstance(expires, int | float) or expires <= time.time():
        return None
    roles = session.get("roles")
    return User(
        subject=subject,
        token=token,
        roles=frozenset(r for r in roles if isinstance(r, str))
        if isinstance(roles, list)
        else frozenset(),
    )


def require_user(request: Request) -> User:
    user = signed_in_user(request)
    if user is None:
        raise SignInRequired
    return user


class RoleRequired(Exception):
    pass


def require_role(*roles: str) -> Callable[[Request], Awaitable[User]]:
    """A dependency: the signed-in user with any of ``roles`` (else sign in, or a 403 page),
    e.g. ``StaffUser = Annotated[User, Depends(require_role("staff", "admin"))]``."""

    async def dependency(request: Request) -> User:
        user = require_user(request)
        if not user.has_any(*roles):
            raise RoleRequired
        return user

    return dependency


def _roles_from(claims: dict[str, Any], path: str) -> list[str]:
    value: Any = claims.get(path)
    if value is None:
        value = claims
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(v).lower() for v in value] if isinstance(value, list) else []


# The dependencies are coroutines: FastAPI runs a plain function in a worker thread, a
# hand-over per request that costs more than the function itself.
async def _current_user(request: Request) -> User:
    return require_user(request)


async def _frontend(request: Request) -> Frontend:
    return frontend_of(request)


CurrentUser = Annotated[User, Depends(_current_user)]
FrontendDep = Annotated[Frontend, Depends(_frontend)]


async def csrf_protect(request: Request) -> None:
    """Every state-changing request carries the session's CSRF token (a form field)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = await request.form()
    presented = form.get(CSRF_FIELD)
    if not session_of(request).csrf_valid(presented if isinstance(presented, str) else None):
        raise CsrfFailed


def safe_next(value: str | None) -> str:
    """A same-site path to go back to after sign-in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _auth_router() -> APIRouter:
    router = APIRouter()

    @router.get("/sign-in", include_in_schema=False)
    async def sign_in(request: Request, frontend: FrontendDep, next: str = "/") -> Response:
        assert frontend.oidc is not None
        try:
            start = await frontend.oidc.start()
        except OidcError as exc:
            return frontend.error_page(
                request, 503, "Sorry, you cannot sign in at the moment", str(exc)
            )
        session = session_of(request)
        session["login"] = {
            "state": start.state,
            "nonce": start.nonce,
            "verifier": start.verifier,
            "next": safe_next(next),
        }
        return RedirectResponse(start.url, status_code=303)

    @router.get("/auth/callback", include_in_schema=False)
    async def callback(
        request: Request,
        frontend: FrontendDep,
        code: str | None = None,
        state: str | None = None,
        error: str | None = None,
    ) -> Response:
        assert frontend.oidc is not None
        session = session_of(request)
        login = session.pop("login", None)
        if not isinstance(login, dict) or not state or state != login.get("state"):
            return frontend.error_page(
                request,
                400,
                "Sorry, there is a problem signing you in",
                "The sign-in took too long or was started in another window. Sign in again.",
            )
        if error or not code:
            return frontend.error_page(
                request, 400, "You have not signed in", "The sign-in was cancelled or refused."
            )
        try:
            signed = await frontend.oidc.finish(
                code=code, verifier=login["verifier"], nonce=login["nonce"]
            )
        except OidcError as exc:
            return frontend.error_page(
                request, 400, "Sorry, there is a problem signing you in", str(exc)
            )
        csrf = session.get(CSRF_FIELD)
        session.clear()  # a new session on sign-in (no fixation)
        session.update(
            sub=signed.subject,
            token=signed.access_token,
            idt=signed.id_token,
            exp=int(signed.expires_at),
            roles=_roles_from(signed.claims, frontend.settings.oidc_roles_claim),
        )
        if isinstance(csrf, str):
            session[CSRF_FIELD] = csrf
        session.modified = True
        return RedirectResponse(safe_next(login.get("next")), status_code=303)

    @router.get("/sign-out", include_in_schema=False)
    async def sign_out_page(request: Request, frontend: FrontendDep) -> Response:
        return frontend.render(request, "webkit/sign_out.html", page_title="Sign out")

    @router.post("/sign-out", include_in_schema=False)
    async def sign_out(request: Request, frontend: FrontendDep) -> Response:
        assert frontend.oidc is not None
        session = session_of(request)
        id_token = session.get("idt")
        session.clear()
        after = frontend.settings.public_url.rstrip("/") + "/signed-out"
        url = await frontend.oidc.end_session_url(
            id_token=id_token if isinstance(id_token, str) else None, after=after
        )
        return RedirectResponse(url or "/signed-out", status_code=303)

    @router.get("/signed-out", include_in_schema=False)
    async def signed_out(request: Request, frontend: FrontendDep) -> Response:
        return frontend.error_page(request, 200, "You have signed out")

    return router


def create_frontend(
    settings: FrontendSettings,
    *,
    site_name: str,
    service_name: str,
    templates: Path,
    navigation: Sequence[Link],
    routers: Sequence[APIRouter],
    footer_links: Sequence[Link] = DEFAULT_FOOTER,
    on_startup: Callable[[Frontend], Any] | None = None,
    home: Callable[[User | None], str] | None = None,
) -> FastAPI:
    """``navigation``: the service navigation (each :class:`Link` shown to the roles it
    names); ``home``: where the header's links go for a user (``/`` without it)."""
    frontend = Frontend(
        settings,
        site_name=site_name,
        service_name=service_name,
        templates=templates,
        navigation=navigation,
        footer_links=footer_links,
        home=home,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await frontend.start()
        try:
            yield
        finally:
            await frontend.stop()

    app = FastAPI(
        title=service_name,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(csrf_protect)],
    )
    app.state.frontend = frontend
    app.mount("/assets", assets_app(), name="assets")
    app.include_router(_auth_router())
    for router in routers:
        app.include_router(router)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        target = "/sign-in?next=" + quote(path if request.method == "GET" else "/", safe="")
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(RoleRequired)
    async def _forbidden(request: Request, exc: Exception) -> Response:
        return frontend.error_page(
            request, 403, "You cannot see this page", "Your account does not give you access to it."
        )

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: Exception) -> Response:
        return frontend.error_page(
            request,
            400,
            "Sorry, there is a problem with this form",
            "The page was open too long or came from somewhere else. Go back, reload the "
            "page and try again.",
        )

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.status == 401:
            session_of(request).clear()
            return await _sign_in(request, exc)
        if exc.status == 404:
            return frontend.error_page(
                request, 404, "Page not found", "If you typed the web address, check it is correct."
            )
        if exc.status == 403:
            return frontend.error_page(
                request,
                403,
                "You cannot see this page",
                "Your account does not give you access to it.",
            )
        if exc.status == 429:
            return frontend.error_page(
                request,
                429,
                "Sorry, there have been too many attempts",
                "Wait a minute and try again.",
            )
        log.warning("gateway answered %s %s", exc.status, exc.title)
        return frontend.error_page(
            request,
            503,
            "Sorry, the service is unavailable",
            "The council's systems did not answer. Try again later.",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return frontend.error_page(
                request, 404, "Page not found", "If you typed the web address, check it is correct."
            )
        if exc.status_code == 405:
            return frontend.error_page(
                request, 405, "Page not found", "This page cannot be used like that."
            )
        return frontend.error_page(
            request, exc.status_code, "Sorry, there is a problem", "Go back and try again."
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
            return frontend.error_page(
                request, 404, "Page not found", "If you typed the web address, check it is correct."
            )
        return frontend.error_page(
            request,
            400,
            "Sorry, there is a problem with this page",
            "The address or form was not complete. Go back and try again.",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return frontend.error_page(
            request, 500, "Sorry, there is a problem with the service", "Try again later."
        )

    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(
        SessionMiddleware,
        secret=settings.session_secret.get_secret_value(),
        cookie=settings.session_cookie,
        max_age=settings.session_max_age_seconds,
        secure=settings.cookies_secure,
    )
    issuer = urlsplit(settings.oidc_issuer)
    app.add_middleware(
        SecurityHeaders,
        hsts=settings.cookies_secure,
        form_targets=(f"{issuer.scheme}://{issuer.netloc}",),
    )
    app.add_middleware(ServerTiming)  # outermost: the whole answer is timed
    if on_startup is not None:
        on_startup(frontend)
    return app


__all__ = [
    "CurrentUser",
    "Frontend",
    "FrontendDep",
    "Link",
    "Session",
    "User",
    "create_frontend",
    "frontend_of",
    "require_role",
    "require_user",
    "signed_in_user",
]
