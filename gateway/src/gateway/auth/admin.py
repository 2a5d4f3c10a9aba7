"""The admin API for API keys, served by the gateway itself at ``/api/v1/admin/api-keys``.

The gateway authenticates the caller and puts the :class:`Principal` in
``request.scope["mk.principal"]``; only admins get through (anonymous 401, others 403).
A new key's secret is in the 201 response and nowhere else, ever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth.authenticator import Authenticator
from gateway.auth.errors import BEARER_CHALLENGE
from gateway.auth.store import ApiKey, InvalidKeyRequest
from servicekit.errors import DomainError, Forbidden, NotFound, Unauthorized
from servicekit.identity import ANONYMOUS, Principal, Role
from servicekit.problems import install_problem_handlers, problem

PREFIX = "/api/v1/admin/api-keys"
PRINCIPAL_SCOPE_KEY = "mk.principal"
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


class SignInRequired(Unauthorized):
    """401 with a ``WWW-Authenticate`` challenge."""


class ApiKeyNotFound(NotFound):
    code = "api-key-not-found"


class InvalidApiKeyRequest(DomainError):
    status, code, title = 422, "invalid-api-key-request", "Invalid API key request"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["FixMyStreet MK"])
    role: Literal["partner", "admin"] = "partner"
    scopes: list[str] = Field(default_factory=list, max_length=32, examples=[["open311"]])


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: str
    scopes: list[str]
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            name=key.name,
            role=key.role.value,
            scopes=list(key.scopes),
            created_at=key.created_at,
            created_by=key.created_by,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            revoked_by=key.revoked_by,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The full key. Shown in this response only: store it now.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyPublic]


def current_principal(request: Request) -> Principal:
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY, ANONYMOUS)
    return principal if isinstance(principal, Principal) else ANONYMOUS


def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.is_anonymous:
        raise SignInRequired("Sign in as an administrator to manage API keys.")
    if Role.ADMIN not in principal.roles:
        raise Forbidden("Only administrators manage API keys.", required_roles=["admin"])
    return principal


Admin = Annotated[Principal, Depends(require_admin)]


def create_admin_app(authenticator: Authenticator) -> FastAPI:
    app = FastAPI(
        title="MK digital platform — gateway administration",
        description="API keys for integration partners and Open311 clients.",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_problem_handlers(app)

    async def _sign_in_required(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SignInRequired)
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            code=exc.code,
            headers={"WWW-Authenticate": BEARER_CHALLENGE},
            instance=request.url.path,
        )

    app.add_exception_handler(SignInRequired, _sign_in_required)

    @app.post(
        PREFIX,
        status_code=status.HTTP_201_CREATED,
        response_model=ApiKeyCreated,
        tags=["api-keys"],
        summary="Create an API key (its secret is shown once)",
        openapi_extra={"security": SECURITY},
    )
    async def create_key(body: ApiKeyCreate, admin: Admin, response: Response) -> ApiKeyCreated:
        try:
            created = await authenticator.store.create(
                body.name, role=body.role, scopes=body.scopes, created_by=admin.subject
            )
        except InvalidKeyRequest as exc:
            raise InvalidApiKeyRequest(exc.detail) from None
        response.headers["Location"] = f"{PREFIX}/{created.api_key.id}"
        response.headers["Cache-Control"] = "no-store"
        return ApiKeyCreated(**ApiKeyPublic.of(created.api_key).model_dump(), key=created.key)

    @app.get(
        PREFIX,
        response_model=ApiKeyList,
        tags=["api-keys"],
        summary="List API keys (never their secrets)",
        openapi_extra={"security": SECURITY},
    )
    async def list_keys(admin: Admin, include_revoked: bool = True) -> ApiKeyList:
        keys = await authenticator.store.list_keys(include_revoked=include_revoked)
        return ApiKeyList(items=[ApiKeyPublic.of(k) for k in keys])

    @app.get(
        PREFIX + "/{key_id}",
        response_model=ApiKeyPublic,
        tags=["api-keys"],
        summary="Read an API key",
        openapi_extra={"security": SECURITY},
    )
    async def read_key(key_id: str, admin: Admin) -> ApiKeyPublic:
        key = await authenticator.store.get(key_id)
        if key is None:
            raise ApiKeyNotFound("No API key with this id.")
        return ApiKeyPublic.of(key)

    @app.delete(
        PREFIX + "/{key_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        tags=["api-keys"],
        summary="Revoke an API key (idempotent)",
        response_class=Response,
        openapi_extra={"security": SECURITY},
    )
    async def revoke_key(key_id: str, admin: Admin) -> Response:
        key = await authenticator.store.revoke(key_id, revoked_by=admin.subject)
        if key is None:
            raise ApiKeyNotFound("No API key with this id.")
        authenticator.forget_key(key_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from the council's identity "
                    "provider, with the admin role.",
                },
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "An API key with the admin role.",
                },
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
