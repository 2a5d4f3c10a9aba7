from alembic import context
from sqlmodel import SQLModel

from servicekit.migrations import run_env

run_env(context, SQLModel.metadata)
