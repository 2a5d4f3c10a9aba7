"""What every front-end is configured with; each subclasses :class:`FrontendSettings` with its
own environment prefix (``CITIZEN_PORTAL_...``, ``STAFF_CONSOLE_...``).

Sign-in works with any OIDC provider by settings alone: ``oidc_issuer`` (discovery is
``<issuer>/.well-known/openid-configuration``), ``oidc_client_id`` and either a client secret
(``client_secret_post``: Keycloak, Entra ID) or a private key (``private_key_jwt``: GOV.UK One
Login). The session secret keeps its development default only in development or test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from servicekit.settings import PlatformSettings, check_secret

DEV_SESSION_SECRET = "dev-only-session-secret-change-me-0123456789"  # noqa: S105 - dev only
DEV_CLIENT_SECRET = "dev-only-client-secret-change-me-0123456789"  # noqa: S105 - dev only


class FrontendSettings(PlatformSettings):
    #: The front-end's own address as the browser sees it (redirect URIs are made from it).
    public_url: str = "http://127.0.0.1:8010"
    #: The platform's one entry point: every API call goes there.
    gateway_url: str = "http://127.0.0.1:8000"
    gateway_timeout_seconds: float = Field(default=15.0, gt=0)

    #: Encrypts and signs the session cookie (at least 32 random bytes outside development).
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    session_cookie: str = "mk_session"
    session_max_age_seconds: int = Field(default=8 * 3600, gt=0)
    #: The cookie is ``Secure`` unless this is development over plain http.
    secure_cookies: bool | None = None

    oidc_issuer: str = "http://127.0.0.1:8000/dev-issuer"
    oidc_client_id: str = "citizen-portal"
    oidc_client_auth: Literal["client_secret_post", "private_key_jwt"] = "client_secret_post"
    oidc_client_secret: SecretStr = SecretStr(DEV_CLIENT_SECRET)
    #: PEM private key for ``private_key_jwt`` (RSA or EC); its key id from ``oidc_key_id``.
    oidc_private_key_file: Path | None = None
    oidc_key_id: str | None = None
    oidc_scopes: str = "openid"
    #: The ID token's claim with the user's roles (dotted for nested: ``realm_access.roles``),
    #: for front-ends that show pages by role (the staff console); the gateway still decides.
    oidc_roles_claim: str = "roles"
    oidc_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Sent to the provider as ``ui_locales``/``vtr`` etc. are not needed by the dev issuer;
    #: extra authorization parameters, e.g. One Login's ``{"vtr": "[\"Cl.Cm\"]"}``.
    oidc_extra_authorize_params: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _refuse_dev_frontend_secrets(self) -> Self:
        prefix = (self.model_config.get("env_prefix") or "").upper()
        check_secret(
            f"{prefix}SESSION_SECRET",
            self.session_secret,
            dev_default=DEV_SESSION_SECRET,
            environment=self.environment,
        )
        if self.oidc_client_auth == "client_secret_post":
            if self.production_like and (
                self.oidc_client_secret.get_secret_value() == DEV_CLIENT_SECRET
            ):
                raise ValueError(f"{prefix}OIDC_CLIENT_SECRET must be set outside development")
        elif self.oidc_private_key_file is None:
            raise ValueError(f"private_key_jwt needs {prefix}OIDC_PRIVATE_KEY_FILE")
        return self

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.production_like or self.public_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/auth/callback"
