"""The portal's settings (environment prefix ``CITIZEN_PORTAL_``): what every front-end has
(``webkit.settings.FrontendSettings``: gateway, session, OIDC) with the portal's own port."""

from pydantic_settings import SettingsConfigDict

from webkit.settings import FrontendSettings


class PortalSettings(FrontendSettings):
    model_config = SettingsConfigDict(
        env_prefix="CITIZEN_PORTAL_", extra="ignore", hide_input_in_errors=True
    )

    service_name: str = "citizen-portal"
    port: int = 8010
    public_url: str = "http://127.0.0.1:8010"
    oidc_client_id: str = "citizen-portal"
