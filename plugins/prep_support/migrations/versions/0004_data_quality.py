"""data quality results; incidents not tied to monitoring checks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 13:30:17.049203
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dq_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("suite_id", sa.String(length=100), nullable=False),
        sa.Column("check_id", sa.String(length=200), nullable=False),
        sa.Column("interval_start", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("interval_end", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expectation", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("observed_value", sa.JSON(), nullable=True),
        sa.Column("unexpected_count", sa.Integer(), nullable=True),
        sa.Column("element_count", sa.Integer(), nullable=True),
        sa.Column("unexpected_percent", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("sample", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("evaluated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dq_results")),
        sa.UniqueConstraint(
            "suite_id", "check_id", "interval_start", name=op.f("uq_dq_results_suite_id_check_id_interval_start")
        ),
    )
    with op.batch_alter_table("dq_results", schema=None) as batch_op:
        batch_op.create_index("ix_dq_results_suite_check_end", ["suite_id", "check_id", "interval_end"], unique=False)

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column(
            "check_id", existing_type=sa.VARCHAR(length=201), type_=sa.String(length=300), existing_nullable=False
        )
        batch_op.drop_constraint(batch_op.f("fk_incidents_check_id_checks"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f("fk_incidents_check_id_checks"), "checks", ["check_id"], ["id"])
        batch_op.alter_column(
            "check_id", existing_type=sa.String(length=300), type_=sa.VARCHAR(length=201), existing_nullable=False
        )

    with op.batch_alter_table("dq_results", schema=None) as batch_op:
        batch_op.drop_index("ix_dq_results_suite_check_end")

    op.drop_table("dq_results")
