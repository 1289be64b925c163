"""Member search by any part of id, name or email uses trigram indexes on PostgreSQL.

A plain index on SQLite (which scans 50,000 members in a few milliseconds anyway).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("id", "name", "email")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        op.create_index(
            f"members_{column}_trgm",
            "members",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"members_{column}_trgm", "members")
