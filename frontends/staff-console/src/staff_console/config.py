"""The console's settings (environment prefix ``STAFF_CONSOLE_``): what every front-end has
(``webkit.settings.FrontendSettings``: gateway, session, OIDC) with the console's own port."""

from pydantic_settings import SettingsConfigDict

from webkit.settings import FrontendSettings


class ConsoleSettings(FrontendSettings):
    model_config = SettingsConfigDict(
        env_prefix="STAFF_CONSOLE_", extra="ignore", hide_input_in_errors=True
    )

    service_name: str = "staff-console"
    port: int = 8011
    public_url: str = "http://127.0.0.1:8011"
    oidc_client_id: str = "staff-console"
    session_cookie: str = "mk_console_session"
