"""A gateway serving the dev OIDC provider, and a small webkit front-end signed in through it
(real uvicorn servers on free ports, in the test's event loop)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from jwt.algorithms import ECAlgorithm

from gateway.auth.devissuer import DEV_AUDIENCE, ensure_dev_issuer
from gateway.auth.settings import AuthSettings
from gateway.config import GatewaySettings
from gateway.main import create_app as create_gateway
from servicekit.testing import free_port, running_app
from webkit.app import CurrentUser, FrontendDep, Link, User, create_frontend, require_role
from webkit.settings import FrontendSettings

SECRET = "a-test-client-secret-0123456789-abcdefghij"
TEMPLATES = Path(__file__).parent / "templates"


class DemoSettings(FrontendSettings):
    model_config = FrontendSettings.model_config | {"env_prefix": "DEMO_FRONTEND_"}


def demo_router() -> APIRouter:
    router = APIRouter()

    @router.get("/")
    async def home(request: Request, frontend: FrontendDep) -> Response:
        return frontend.render(request, "demo.html", page_title="Home", message="home")

    @router.get("/me")
    async def me(request: Request, frontend: FrontendDep, user: CurrentUser) -> Response:
        return frontend.render(request, "demo.html", page_title="Me", message=user.subject)

    @router.get("/staff-only")
    async def staff_only(
        request: Request,
        frontend: FrontendDep,
        user: Annotated[User, Depends(require_role("staff", "admin"))],
    ) -> Response:
        return frontend.render(
            request, "demo.html", page_title="Staff", message=",".join(sorted(user.roles))
        )

    @router.get("/token")  # the test front-end only: lets the test check the gateway takes it
    async def token(user: CurrentUser) -> Response:
        return HTMLResponse(user.token)

    @router.post("/form")
    async def form(request: Request, frontend: FrontendDep) -> Response:
        return frontend.render(request, "demo.html", page_title="Done", message="posted")

    return router


@dataclass
class Stack:
    gateway_url: str
    issuer_url: str
    auth: AuthSettings
    client_key: ec.EllipticCurvePrivateKey
    client_key_file: Path
    front_ports: list[int]

    def frontend_settings(self, port: int, **overrides: Any) -> DemoSettings:
        values: dict[str, Any] = {
            "environment": "test",
            "public_url": f"http://127.0.0.1:{port}",
            "gateway_url": self.gateway_url,
            "oidc_issuer": self.issuer_url,
            "oidc_client_id": "demo",
            "oidc_client_secret": SECRET,
        }
        values.update(overrides)
        return DemoSettings(**values)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    port = free_port()
    issuer_url = f"http://127.0.0.1:{port}/dev-issuer"
    issuer = ensure_dev_issuer(tmp_path / "dev-issuer")
    client_key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "client-key.pem"
    key_file.write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_jwk = json.loads(ECAlgorithm.to_jwk(client_key.public_key()))
    public_jwk["kid"] = "demo-key-1"
    front_ports = [free_port() for _ in range(3)]
    redirect_uris = [f"http://127.0.0.1:{p}/auth/callback" for p in front_ports]
    auth = AuthSettings(
        database_url=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        jwt_jwks_file=issuer.jwks_path,
        jwt_issuer=issuer_url,
        jwt_audience=DEV_AUDIENCE,
        dev_oidc_clients={
            "demo": {"redirect_uris": redirect_uris, "secret": SECRET, "roles": ["citizen"]},
            "demo-pkjwt": {
                "redirect_uris": redirect_uris,
                "jwks": {"keys": [public_jwk]},
                "roles": ["staff", "admin"],
            },
        },
    )
    gateway = create_gateway(GatewaySettings(environment="test", port=port), auth_settings=auth)
    async with running_app(gateway, port=port) as url:
        yield Stack(url, issuer_url, auth, client_key, key_file, front_ports)


@asynccontextmanager
async def running_frontend(settings: DemoSettings, port: int) -> AsyncIterator[httpx.AsyncClient]:
    """The demo front-end on ``port``; yields a browser-like client (cookies kept, redirects
    not followed, so each hop can be checked)."""
    app = create_frontend(
        settings,
        site_name="Test council",
        service_name="Demo service",
        templates=TEMPLATES,
        navigation=[Link("Home", "/")],
        routers=[demo_router()],
    )
    async with running_app(app, port=port) as url, httpx.AsyncClient(base_url=url) as browser:
        yield browser
