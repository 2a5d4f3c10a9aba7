from alembic import context
from servicekit.migrations import run_env
from sqlmodel import SQLModel

run_env(context, SQLModel.metadata)
