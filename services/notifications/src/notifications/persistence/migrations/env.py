from alembic import context
from servicekit.migrations import run_env
from sqlmodel import SQLModel

from notifications.persistence import tables  # noqa: F401  (registers the tables)

run_env(context, SQLModel.metadata)
