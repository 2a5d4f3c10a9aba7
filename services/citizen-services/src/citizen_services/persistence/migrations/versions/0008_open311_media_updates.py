"""Open311 as FixMyStreet uses it: extra attributes, uploaded photos, citizens' updates.

* ``service_request.extra_attributes``: attributes a client sent that the service does not
  define (FixMyStreet's ``uprn``, ``fixmystreet_id``, ``easting``/``northing``...).
* ``service_request_media``: photos uploaded with a report (multipart/form-data).
* ``service_request_update``: ``source`` (``open311`` for an update a client posted),
  ``external_id`` (the client's id for it), ``reported_status`` (the status it reported),
  ``media_url`` and ``contact`` (private).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns added in place (not batch mode), as in 0007: SQLite and PostgreSQL both can.
    op.add_column("service_request", sa.Column("extra_attributes", sa.JSON(), nullable=True))
    for column in (
        sa.Column("external_id", sa.String(100), nullable=True),
        sa.Column("reported_status", sa.String(40), nullable=True),
        sa.Column("media_url", sa.String(2000), nullable=True),
        sa.Column("contact", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(20), nullable=True),
    ):
        op.add_column("service_request_update", column)
    op.create_table(
        "service_request_media",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("request_id", sa.Uuid(), sa.ForeignKey("service_request.id"), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("extension", sa.String(10), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_service_request_media_request_id", "service_request_media", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_service_request_media_request_id", table_name="service_request_media")
    op.drop_table("service_request_media")
    for name in ("source", "contact", "media_url", "reported_status", "external_id"):
        op.drop_column("service_request_update", name)
    op.drop_column("service_request", "extra_attributes")
