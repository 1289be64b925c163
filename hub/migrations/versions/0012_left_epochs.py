"""The stores a device has left.

A door whose store is recovered starts a new epoch; its births from the old one, which
anyone can read off the broker, must not pass for the door's state again (a replay would show
a door that holds no list as online on its old one). The hub now remembers the epochs each
device has left.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Spelled out, not imported from hub: a migration must not change when the code does.
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("device_states") as table:
        table.add_column(sa.Column("left_epochs", Json))


def downgrade() -> None:
    with op.batch_alter_table("device_states") as table:
        table.drop_column("left_epochs")
