from alembic import context
from sqlmodel import SQLModel

from citizen_services.persistence import tables  # noqa: F401  (registers the tables)
from servicekit.migrations import run_env

run_env(context, SQLModel.metadata)
