"""Hub settings: the pseudonym key and the retention period.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:58:01.285851
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:

    op.drop_table("settings")
