"""Rollouts of a release to the fleet, and the sites' update windows.

Fleet updates (issue 17) go out in rollouts: a release to the whole network, some sites or
some devices, in stages, each door's part a row with its step, why, and its deadline. A site
may say when its doors may be ordered to update (outside opening hours, say).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(64), sa.ForeignKey("releases.version"), nullable=False),
        sa.Column("target", JSON, nullable=False),
        sa.Column("stages", sa.String(200), nullable=False),
        sa.Column("stage_count", sa.Integer, nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("max_failures", sa.Integer),
        sa.Column("max_failure_share", sa.Float),
        sa.Column("accepted_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deadline_minutes", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("paused_reason", sa.String(300)),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rollouts_state", "rollouts", ["state"])
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", ID, sa.ForeignKey("rollouts.id"), primary_key=True),
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("step", sa.String(12), nullable=False),
        sa.Column("detail", sa.String(300), nullable=False, server_default=""),
        sa.Column("from_version", sa.String(40)),
        sa.Column("ordered_at", sa.DateTime(timezone=True)),
        sa.Column("last_order_at", sa.DateTime(timezone=True)),
        sa.Column("deadline_at", sa.DateTime(timezone=True)),
        sa.Column("step_at", sa.DateTime(timezone=True)),
        sa.Column("history", JSON),
        sa.Column("live", sa.Boolean),
    )
    op.create_index(
        "ux_rollout_devices_live", "rollout_devices", ["site", "device", "live"], unique=True
    )
    op.create_index("ix_rollout_devices_step", "rollout_devices", ["rollout_id", "step"])
    with op.batch_alter_table("sites") as batch_op:
        batch_op.add_column(sa.Column("update_window", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch_op:
        batch_op.drop_column("update_window")
    op.drop_table("rollout_devices")
    op.drop_table("rollouts")
