"""A waiting-list entry keeps how it ended, and why.

An entry ends when its member gets a desk (``booking_id``), leaves the list, when its part of
the day is over, or when a desk freed but the member could no longer book it (blocked, the
month's desk days used, the site no longer in their allowance). Without the outcome and the
reason the member sees only that they stopped waiting, not why: ``outcome`` is one word
(booked, left, expired, refused), ``reason`` the refusal's words.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("waiting_list") as table:
        table.add_column(sa.Column("outcome", sa.String(10)))
        table.add_column(sa.Column("reason", sa.String(500)))


def downgrade() -> None:
    with op.batch_alter_table("waiting_list") as table:
        table.drop_column("reason")
        table.drop_column("outcome")
