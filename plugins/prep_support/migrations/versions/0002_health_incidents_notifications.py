"""health state, rollups, incidents, notifications, maintenance windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:46:47.274169
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("service_ids", sa.JSON(), nullable=False),
        sa.Column("starts_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
        sa.UniqueConstraint("key", name=op.f("uq_maintenance_windows_key")),
    )
    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.create_index("ix_maintenance_windows_span", ["starts_at", "ends_at"], unique=False)

    op.create_table(
        "service_states",
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("since", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_service_states_service_id_services")),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_service_states")),
    )
    op.create_table(
        "check_hourly",
        sa.Column("check_id", sa.String(length=201), nullable=False),
        sa.Column("hour", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("latency_count", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p95_ms", sa.Float(), nullable=True),
        sa.Column("latency_max_ms", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], name=op.f("fk_check_hourly_check_id_checks")),
        sa.PrimaryKeyConstraint("check_id", "hour", name=op.f("pk_check_hourly")),
    )
    with op.batch_alter_table("check_hourly", schema=None) as batch_op:
        batch_op.create_index("ix_check_hourly_hour", ["hour"], unique=False)

    op.create_table(
        "check_states",
        sa.Column("check_id", sa.String(length=201), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=False),
        sa.Column("since", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("regression_streak", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.String(length=250), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("baseline_p95_ms", sa.Float(), nullable=True),
        sa.Column("baseline_hours", sa.Integer(), nullable=False),
        sa.Column("baseline_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], name=op.f("fk_check_states_check_id_checks")),
        sa.PrimaryKeyConstraint("check_id", name=op.f("pk_check_states")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("check_id", sa.String(length=201), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("tracker", sa.String(length=20), nullable=True),
        sa.Column("ticket_key", sa.String(length=100), nullable=True),
        sa.Column("ticket_id", sa.String(length=100), nullable=True),
        sa.Column("ticket_url", sa.String(length=500), nullable=True),
        sa.Column("upstream_incident_id", sa.Integer(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.Column("opened_run_id", sa.String(length=250), nullable=False),
        sa.Column("opened_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], name=op.f("fk_incidents_check_id_checks")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_incidents_service_id_services")),
        sa.ForeignKeyConstraint(
            ["upstream_incident_id"], ["incidents.id"], name=op.f("fk_incidents_upstream_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_service_status", ["service_id", "status"], unique=False)
        batch_op.create_index(
            "uq_incidents_open_key",
            ["dedup_key"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("conn_id", sa.String(length=250), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("thread_id", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_notifications_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_notifications_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_incident_id"), ["incident_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_incident_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_incidents_open_key",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_incidents_service_status")

    op.drop_table("incidents")
    op.drop_table("check_states")
    with op.batch_alter_table("check_hourly", schema=None) as batch_op:
        batch_op.drop_index("ix_check_hourly_hour")

    op.drop_table("check_hourly")
    op.drop_table("service_states")
    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_windows_span")

    op.drop_table("maintenance_windows")
