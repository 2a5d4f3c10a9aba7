"""Programmes, venues, sessions, participants and enrolments.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "programme",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False, index=True),
        sa.Column("delivered_by", sa.String(200), nullable=False),
        sa.Column("description", sa.String(4000), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("eligibility", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"), _ts("updated_at"), _ts("published_at", True),
    )
    op.create_table(
        "venue",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(400), nullable=False),
        sa.Column("postcode", sa.String(10), nullable=False),
        sa.Column("ward", sa.String(80), nullable=False, index=True),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("accessibility_notes", sa.String(2000), nullable=False),
        sa.Column("opening_times", sa.JSON(), nullable=True),
        _ts("created_at"),
    )
    op.create_table(
        "programme_session",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("programme_id", sa.Uuid(), sa.ForeignKey("programme.id"), nullable=False,
                  index=True),
        sa.Column("venue_id", sa.Uuid(), sa.ForeignKey("venue.id"), nullable=False,
                  index=True),
        _ts("starts_at"), _ts("ends_at"),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("enrolment_count", sa.Integer(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "participant",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("subject", sa.String(200), nullable=True, unique=True),
        sa.Column("preferred_name", sa.String(100), nullable=True),
        sa.Column("postcode", sa.String(10), nullable=True),
        sa.Column("postcode_district", sa.String(4), nullable=True),
        sa.Column("year_of_birth", sa.Integer(), nullable=True),
        sa.Column("receives_benefits", sa.Boolean(), nullable=True),
        sa.Column("has_device_at_home", sa.Boolean(), nullable=True),
        sa.Column("has_connection_at_home", sa.Boolean(), nullable=True),
        _ts("consent_given_at"),
        sa.Column("consent_version", sa.String(40), nullable=False),
        _ts("created_at"), _ts("updated_at"), _ts("erased_at", True),
    )
    op.create_table(
        "enrolment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("programme_session.id"),
                  nullable=False, index=True),
        sa.Column("participant_id", sa.Uuid(), sa.ForeignKey("participant.id"),
                  nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        _ts("created_at"), _ts("confirmed_at", True), _ts("promoted_at", True),
        _ts("cancelled_at", True),
        sa.Column("attended", sa.Boolean(), nullable=True),
        _ts("attendance_recorded_at", True),
        sa.UniqueConstraint("session_id", "sequence", name="uq_enrolment_sequence"),
    )
    op.create_index("ux_enrolment_active", "enrolment", ["session_id", "participant_id"],
                    unique=True, postgresql_where=sa.text("status <> 'cancelled'"),
                    sqlite_where=sa.text("status <> 'cancelled'"))


def downgrade() -> None:
    op.drop_index("ux_enrolment_active", table_name="enrolment")
    for table in ("enrolment", "participant", "programme_session", "venue", "programme"):
        op.drop_table(table)
