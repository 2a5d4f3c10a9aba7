"""Catalogue import jobs: an import run in the background, with its progress.

* ``catalogue_import_job``: the validated records, status (queued, running, succeeded,
  failed), ``rows_total``/``rows_done``, the claim (a token and a heartbeat, so a job of a
  replica that died is claimed again), the entries created or why it failed.
* ``catalogue_import_row``: the job's entries staged a batch at a time (the columns of
  ``catalogue_service``, the history snapshot), copied into the catalogue in one transaction
  when every row is staged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_import_job",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("records", sa.JSON(), nullable=True),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
    )
    op.create_index("ix_catalogue_import_job_status", "catalogue_import_job", ["status"])
    op.create_table(
        "catalogue_import_row",
        sa.Column(
            "job_id", sa.Uuid(), sa.ForeignKey("catalogue_import_job.id"), primary_key=True
        ),
        sa.Column("row", sa.Integer(), primary_key=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(4000), nullable=False),
        sa.Column("slug", sa.String(120), nullable=False),
        sa.Column("service_code", sa.String(64), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=True),
        sa.Column("department", sa.String(200), nullable=True),
        sa.Column("lgsl_codes", sa.JSON(), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=True),
        sa.Column("eligibility", sa.String(4000), nullable=True),
        sa.Column("fees", sa.String(2000), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=True),
        sa.Column("opening_hours", sa.String(1000), nullable=True),
        sa.Column("accessibility_statement_url", sa.String(500), nullable=True),
        sa.Column("last_reviewed_on", sa.Date(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("changed_fields", sa.JSON(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("catalogue_import_row")
    op.drop_index("ix_catalogue_import_job_status", table_name="catalogue_import_job")
    op.drop_table("catalogue_import_job")
