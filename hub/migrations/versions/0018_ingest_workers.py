"""Ingest workers say they are listening.

The booking sweeper releases bookings nobody tapped in for. A tap reaches the hub through
ingest; while ingest is down (or cut off from the broker) the door's taps wait at the broker
and every booking looks like a no-show. Each worker now keeps a row with the time its broker
connection came up and its last beat, so the sweep holds releases unless ingest has been
listening throughout.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_workers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("up_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_workers")
