"""services, checks and check results

Revision ID: 0001
Revises:
Create Date: 2026-11-28 12:24:24.791843
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("team_channel", sa.String(length=200), nullable=False),
        sa.Column("tracker_project", sa.String(length=100), nullable=False),
        sa.Column("criticality", sa.String(length=20), nullable=False),
        sa.Column("depends_on", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
    )
    op.create_table(
        "checks",
        sa.Column("id", sa.String(length=201), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_checks_service_id_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checks")),
    )
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checks_service_id"), ["service_id"], unique=False)

    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("check_id", sa.String(length=201), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("data_interval_start", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("data_interval_end", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("observed_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], name=op.f("fk_check_results_check_id_checks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_results")),
        sa.UniqueConstraint("check_id", "run_id", name=op.f("uq_check_results_check_id_run_id")),
    )
    with op.batch_alter_table("check_results", schema=None) as batch_op:
        batch_op.create_index("ix_check_results_check_interval_end", ["check_id", "data_interval_end"], unique=False)
        batch_op.create_index("ix_check_results_interval_end", ["data_interval_end"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("check_results", schema=None) as batch_op:
        batch_op.drop_index("ix_check_results_interval_end")
        batch_op.drop_index("ix_check_results_check_interval_end")

    op.drop_table("check_results")
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checks_service_id"))

    op.drop_table("checks")
    op.drop_table("services")
