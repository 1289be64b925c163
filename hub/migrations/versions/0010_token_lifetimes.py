"""Every API token ends, and a token made in a session ends with it.

API tokens gain ``bound_to``: the hash of the token they were made with, whose end (expiry
or revocation) is theirs too. ``expires_at`` becomes required; tokens stored without one
(which never expired) now end one maximum lifetime (365 days, hub.auth.TOKEN_MAX_LIFETIME
when this was written) after this migration.

Written beside 0009 (another change of the same release); the two are chained when merged.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

#: As hub.auth.TOKEN_MAX_LIFETIME when this migration was written.
MAX_LIFETIME = timedelta(days=365)

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tokens = sa.table("api_tokens", sa.column("expires_at", sa.DateTime(timezone=True)))
    op.execute(
        tokens.update()
        .where(tokens.c.expires_at.is_(None))
        .values(expires_at=datetime.now(UTC) + MAX_LIFETIME)
    )
    with op.batch_alter_table("api_tokens") as table:
        table.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        table.add_column(sa.Column("bound_to", sa.String(64)))
        table.create_index("ix_api_tokens_bound_to", ["bound_to"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as table:
        table.drop_index("ix_api_tokens_bound_to")
        table.drop_column("bound_to")
        table.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=True)
