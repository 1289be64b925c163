"""Occupancy samples keep their 90 % interval.

Issue 15's estimator sends with each headcount the interval that holds the true count with
90 % probability (``low`` and ``high``, hafen.protocol.OccupancySample), so that "free desks
now" can be promised from its upper bound rather than from the point estimate. The samples
and each device's newest sample (``occupancy_now``, read by the live overview) get the two
bounds. Samples stored before, and those of doors that predate the interval, have none: NULL,
never a made-up bound.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLES = ("occupancy_samples", "occupancy_now")


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as table:
            table.add_column(sa.Column("low", sa.Integer))
            table.add_column(sa.Column("high", sa.Integer))


def downgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as table:
            table.drop_column("high")
            table.drop_column("low")
