"""trend reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 13:01:45.733457
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trend_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("week_start", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("week_end", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("availability_pct", sa.Float(), nullable=True),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("chart_png", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_trend_reports_service_id_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trend_reports")),
        sa.UniqueConstraint("service_id", "week_start", name=op.f("uq_trend_reports_service_id_week_start")),
    )


def downgrade() -> None:
    op.drop_table("trend_reports")
