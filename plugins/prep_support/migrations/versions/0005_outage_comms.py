"""outage communication: outages, their announcements and status page state

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outages",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("workaround", sa.Text(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("affected", sa.JSON(), nullable=False),
        sa.Column("starts_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expected_end", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_update", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("incident_key", sa.String(length=300), nullable=True),
        sa.Column("ticket_system", sa.String(length=20), nullable=True),
        sa.Column("ticket_key", sa.String(length=100), nullable=True),
        sa.Column("ticket_id", sa.String(length=100), nullable=True),
        sa.Column("ticket_url", sa.String(length=500), nullable=True),
        sa.Column("statuspage_incident_id", sa.String(length=100), nullable=True),
        sa.Column("created_run_id", sa.String(length=250), nullable=False),
        sa.Column("created_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outages")),
    )
    with op.batch_alter_table("outages", schema=None) as batch_op:
        batch_op.create_index("ix_outages_status_service", ["status", "service_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outages", schema=None) as batch_op:
        batch_op.drop_index("ix_outages_status_service")
    op.drop_table("outages")
