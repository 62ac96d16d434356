"""How-to answers (knowledge base with its full-text index, vocabulary, requests) and shift handovers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:10:00

The full-text index is the database's own: PostgreSQL gets a generated ``search`` tsvector (title
weighted A, body B, 'english' configuration) with a GIN index; SQLite an FTS5 table ``how_to_fts``
over title and body with the porter tokenizer, an external-content table kept in step by triggers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prep_support.schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SQLITE_FTS = (
    "CREATE VIRTUAL TABLE how_to_fts USING fts5(title, body, content='how_to_documents', content_rowid='id', "
    "tokenize='porter unicode61')",
    "CREATE TRIGGER how_to_documents_ai AFTER INSERT ON how_to_documents BEGIN "
    "INSERT INTO how_to_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER how_to_documents_ad AFTER DELETE ON how_to_documents BEGIN "
    "INSERT INTO how_to_fts(how_to_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER how_to_documents_au AFTER UPDATE ON how_to_documents BEGIN "
    "INSERT INTO how_to_fts(how_to_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO how_to_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
)
POSTGRES_FTS = (
    "ALTER TABLE how_to_documents ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')) STORED",
    "CREATE INDEX ix_how_to_documents_search ON how_to_documents USING gin (search)",
)


def upgrade() -> None:
    op.create_table(
        "how_to_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("updated_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_how_to_documents")),
        sa.UniqueConstraint("source", "ref", name=op.f("uq_how_to_documents_source_ref")),
    )
    for statement in SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRES_FTS:
        op.execute(statement)
    op.create_table(
        "how_to_terms",
        sa.Column("term", sa.String(length=100), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.Column("docs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_how_to_terms")),
    )
    op.create_table(
        "how_to_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("request_key", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("best_coverage", sa.Float(), nullable=False),
        sa.Column("suggestions", sa.JSON(), nullable=False),
        sa.Column("answered_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", prep_support.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("deflected", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_how_to_requests")),
        sa.UniqueConstraint("system", "request_key", name=op.f("uq_how_to_requests_system_request_key")),
    )
    op.create_index(op.f("ix_how_to_requests_answered_at"), "how_to_requests", ["answered_at"])
    op.create_table(
        "shift_handovers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("shift_start", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("shift_end", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("since", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("page_url", sa.String(length=1000), nullable=True),
        sa.Column("created_at", prep_support.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift_handovers")),
        sa.UniqueConstraint("team", "shift_start", name=op.f("uq_shift_handovers_team_shift_start")),
    )
    op.create_index(op.f("ix_shift_handovers_shift_start"), "shift_handovers", ["shift_start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_shift_handovers_shift_start"), table_name="shift_handovers")
    op.drop_table("shift_handovers")
    op.drop_index(op.f("ix_how_to_requests_answered_at"), table_name="how_to_requests")
    op.drop_table("how_to_requests")
    op.drop_table("how_to_terms")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE how_to_fts")  # its triggers go with how_to_documents
    op.drop_table("how_to_documents")
