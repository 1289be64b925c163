"""Occupancy samples in a table of their own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Spelled out, not imported from hub.db: a migration must not change when the models do.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "occupancy_samples",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False, unique=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("epoch", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("capacity", sa.Integer),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("present", sa.Boolean, nullable=False),
        sa.Column("rooms", Json, nullable=False),
        sa.Column("co2", Json, nullable=False),
        sa.Column("cause", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("occupancy_device_seq", "occupancy_samples", ["site", "device", "epoch", "seq"])
    op.create_index("occupancy_site_at", "occupancy_samples", ["site", "at"])


def downgrade() -> None:
    op.drop_table("occupancy_samples")
