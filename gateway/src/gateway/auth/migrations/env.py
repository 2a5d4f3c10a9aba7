from typing import Any

from alembic import context

from gateway.auth.tables import metadata
from servicekit.migrations import run_env

#: The gateway's auth migrations keep their own version table, so other gateway components
#: can keep theirs in the same database.
VERSION_TABLE = "gateway_auth_alembic_version"


class _Context:
    """Alembic's context, with ``version_table`` added to ``configure``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(context, name)

    def configure(self, **kwargs: Any) -> None:
        context.configure(version_table=VERSION_TABLE, **kwargs)


run_env(_Context(), metadata)
