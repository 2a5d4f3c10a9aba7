"""The gateway's own tables (SQLAlchemy Core; the schema itself is the Alembic migration)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from servicekit.types import UtcDateTime

#: Alembic's script location for these tables (applied at start-up).
MIGRATIONS = str(Path(__file__).parent / "migrations")

metadata = sa.MetaData()

api_key = sa.Table(
    "gateway_api_key",
    metadata,
    sa.Column("id", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("scopes", sa.JSON(), nullable=False),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("last_used_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_by", sa.String(255), nullable=True),
    sa.CheckConstraint("role IN ('partner', 'admin')", name="ck_gateway_api_key_role"),
    sa.Index("ix_gateway_api_key_name", "name"),
)
