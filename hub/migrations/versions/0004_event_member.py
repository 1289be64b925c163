"""Door events name their member in a column of its own; indexes for newest-first searches.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 02:18:05.945088
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("member", sa.String(length=64), nullable=True))
        batch_op.create_index("events_member_id", ["member", "id"], unique=False)
        batch_op.create_index("events_site_id", ["site", "id"], unique=False)
    extract = (
        "data->>'member'"
        if op.get_bind().dialect.name == "postgresql"
        else "json_extract(data, '$.member')"
    )
    op.execute(f"UPDATE events SET member = {extract}")


def downgrade() -> None:

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("events_member_id")
        batch_op.drop_index("events_site_id")
        batch_op.drop_column("member")
