"""Who asked: the authenticated requester on messages, outages, access campaigns and UAT cycles

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:00:00

Each column holds the username of the user who triggered the run (the run's triggering user), or
``system`` for scheduled and asset-triggered runs; rows written before stay NULL (not recorded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (("notifications", "requested_by"), ("outages", "announced_by"), ("outages", "resolved_by"),
           ("access_campaigns", "started_by"), ("uat_cycles", "started_by"))


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(length=200), nullable=True))


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
