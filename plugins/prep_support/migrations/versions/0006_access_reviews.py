"""access reviews: identity snapshots, campaigns, findings, review items, decisions, remediation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_accounts",
        sa.Column("campaign_id", sa.String(length=20), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=300), nullable=True),
        sa.Column("display_name", sa.String(length=300), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_login", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("employee_id", sa.String(length=100), nullable=True),
        sa.Column("manager", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "system", "account_id", name=op.f("pk_access_accounts")),
    )
    op.create_table(
        "access_campaigns",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("as_of", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("review_started_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("page_url", sa.String(length=500), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_campaigns")),
    )
    op.create_table(
        "access_findings",
        sa.Column("campaign_id", sa.String(length=20), nullable=False),
        sa.Column("finding_id", sa.String(length=700), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("group_name", sa.String(length=300), nullable=False),
        sa.Column("employee_id", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "finding_id", name=op.f("pk_access_findings")),
    )
    with op.batch_alter_table("access_findings", schema=None) as batch_op:
        batch_op.create_index("ix_access_findings_campaign_kind", ["campaign_id", "kind"], unique=False)

    op.create_table(
        "access_memberships",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=20), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("group_name", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_memberships")),
    )
    with op.batch_alter_table("access_memberships", schema=None) as batch_op:
        batch_op.create_index("ix_access_memberships_campaign_id", ["campaign_id"], unique=False)
    op.create_table(
        "access_people",
        sa.Column("campaign_id", sa.String(length=20), nullable=False),
        sa.Column("employee_id", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=300), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("manager_id", sa.String(length=100), nullable=True),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("termination_date", sa.Date(), nullable=True),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "employee_id", name=op.f("pk_access_people")),
    )
    op.create_table(
        "access_remediations",
        sa.Column("campaign_id", sa.String(length=20), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("started_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "item_id", name=op.f("pk_access_remediations")),
    )
    op.create_table(
        "access_review_items",
        sa.Column("campaign_id", sa.String(length=20), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("employee_id", sa.String(length=100), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("group_name", sa.String(length=300), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("routed_by", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "item_id", name=op.f("pk_access_review_items")),
    )
    with op.batch_alter_table("access_review_items", schema=None) as batch_op:
        batch_op.create_index("ix_access_review_items_campaign_reviewer", ["campaign_id", "reviewer"], unique=False)

    op.create_table(
        "access_snapshot_sources",
        sa.Column("campaign_id", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("read_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["access_campaigns.id"],
            name=op.f("fk_access_snapshot_sources_campaign_id_access_campaigns"),
        ),
        sa.PrimaryKeyConstraint("campaign_id", "source", name=op.f("pk_access_snapshot_sources")),
    )
    _upgrade_lifecycle_changes()


# --- user_lifecycle's table (self-contained: the access review tables above are another area's) ---
def _upgrade_lifecycle_changes() -> None:
    op.create_table(
        "lifecycle_changes",
        sa.Column("request_key", sa.String(length=200), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_key", "system", "action", "target", name=op.f("pk_lifecycle_changes")),
    )


def _downgrade_lifecycle_changes() -> None:
    op.drop_table("lifecycle_changes")
# --- end of user_lifecycle's table ---


def downgrade() -> None:
    _downgrade_lifecycle_changes()
    op.drop_table("access_snapshot_sources")
    with op.batch_alter_table("access_review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_access_review_items_campaign_reviewer")

    op.drop_table("access_review_items")
    op.drop_table("access_remediations")
    op.drop_table("access_people")
    with op.batch_alter_table("access_memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_access_memberships_campaign_id")

    op.drop_table("access_memberships")
    with op.batch_alter_table("access_findings", schema=None) as batch_op:
        batch_op.drop_index("ix_access_findings_campaign_kind")

    op.drop_table("access_findings")
    op.drop_table("access_campaigns")
    op.drop_table("access_accounts")
