"""Authentication settings (environment prefix ``GATEWAY_``).

Bearer JWTs are verified against a JWKS (``GATEWAY_JWT_JWKS_URL`` for the council's OIDC
provider, or ``GATEWAY_JWT_JWKS_FILE`` for the dev issuer); API keys live in the gateway's
own database (``GATEWAY_DATABASE_URL``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Only public-key algorithms: a shared-secret (HS*) or ``none`` token is never accepted.
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
    }
)


#: The citizen portal's client at the dev OIDC provider (``make run``'s defaults; the
#: portal's ``CITIZEN_PORTAL_OIDC_CLIENT_SECRET`` development default is the same string).
DEV_PORTAL_CLIENT_SECRET = "dev-only-client-secret-change-me-0123456789"  # noqa: S105


class DevOidcClient(BaseModel):
    """A client of the dev OIDC provider (``gateway.auth.devoidc``; development only)."""

    client_id: str
    redirect_uris: list[str]
    #: ``client_secret_post``; or ``jwks`` (public keys) for ``private_key_jwt``.
    secret: SecretStr | None = None
    jwks: dict[str, Any] | None = None
    #: Which test users the authorize page offers: users with any of these roles.
    roles: list[str] = Field(default_factory=lambda: ["citizen"])

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        known = {"citizen", "staff", "admin", "partner"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}; choose from {sorted(known)}")
        return value


def _default_dev_clients() -> dict[str, DevOidcClient]:
    return {
        "citizen-portal": DevOidcClient(
            client_id="citizen-portal",
            redirect_uris=[
                "http://127.0.0.1:8010/auth/callback",
                "http://localhost:8010/auth/callback",
            ],
            secret=SecretStr(DEV_PORTAL_CLIENT_SECRET),
            roles=["citizen"],
        )
    }


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    #: The gateway's own database (API keys): ``sqlite:///…`` or ``postgresql://…``.
    database_url: str = "sqlite:///var/gateway/gateway.sqlite3"
    run_migrations: bool = True

    #: Where the identity provider publishes its signing keys (OIDC ``jwks_uri``).
    jwt_jwks_url: str | None = None
    #: Or a local JWKS document (the dev issuer's ``var/dev-issuer/jwks.json``).
    jwt_jwks_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256", "ES256"]
    )
    #: Claim holding the caller's roles; a dotted path reaches into objects
    #: (Keycloak: ``realm_access.roles``).
    jwt_roles_claim: str = "roles"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    #: How long a fetched JWKS is trusted before it is fetched again.
    jwt_jwks_cache_seconds: float = Field(default=300, gt=0)
    jwt_jwks_timeout_seconds: float = Field(default=5, gt=0)

    #: Clients of the dev OIDC provider, served at the dev issuer's path in development and
    #: test only (``GATEWAY_DEV_OIDC_CLIENTS``: a JSON object, client id -> DevOidcClient).
    dev_oidc_clients: dict[str, DevOidcClient] = Field(default_factory=_default_dev_clients)

    #: How long an API key looked up by id is cached (revocation takes effect within it).
    api_key_cache_seconds: float = Field(default=5, ge=0)

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        refused = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(f"only public-key algorithms are accepted, not {refused}")
        if not value:
            raise ValueError("at least one algorithm is needed")
        return value

    @model_validator(mode="after")
    def _issuer_and_audience_with_keys(self) -> AuthSettings:
        if self.jwt_jwks_url and self.jwt_jwks_file:
            raise ValueError("set GATEWAY_JWT_JWKS_URL or GATEWAY_JWT_JWKS_FILE, not both")
        if self.jwt_enabled and not (self.jwt_issuer and self.jwt_audience):
            raise ValueError(
                "GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE must be set "
                "with a JWKS: tokens are never accepted unchecked"
            )
        return self

    @field_validator("dev_oidc_clients", mode="before")
    @classmethod
    def _client_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ({"client_id": k, **v} if isinstance(v, dict) else v) for k, v in value.items()
            }
        return value

    @property
    def jwt_enabled(self) -> bool:
        """True when bearer JWTs can be verified (a JWKS URL or file is configured)."""
        return bool(self.jwt_jwks_url or self.jwt_jwks_file)
