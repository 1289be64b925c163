"""Releases of the edge software.

Fleet updates (issue 17) start with the releases the hub holds: each version's manifest,
sealed by the release key, with its number of files and bytes; the wheels lie in the
releases directory beside the store.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("manifest", sa.LargeBinary, nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("rollback_from", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("releases")
