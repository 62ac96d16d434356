"""UAT cycles: cycles, cases per tester and their tickets

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uat_cycles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("release", sa.String(length=100), nullable=False),
        sa.Column("plan", sa.String(length=300), nullable=False),
        sa.Column("business_owner", sa.String(length=200), nullable=False),
        sa.Column("deadline", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("release_key", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("report_url", sa.String(length=500), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("created_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uat_cycles")),
        sa.UniqueConstraint("release", name=op.f("uq_uat_cycles_release")),
    )
    op.create_table(
        "uat_tickets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=100), nullable=False),
        sa.Column("tester", sa.String(length=200), nullable=False),
        sa.Column("ticket_key", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["cycle_id"], ["uat_cycles.id"], name=op.f("fk_uat_tickets_cycle_id_uat_cycles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uat_tickets")),
        sa.UniqueConstraint("cycle_id", "case_id", "tester", name=op.f("uq_uat_tickets_cycle_id_case_id_tester")),
    )


def downgrade() -> None:
    op.drop_table("uat_tickets")
    op.drop_table("uat_cycles")
