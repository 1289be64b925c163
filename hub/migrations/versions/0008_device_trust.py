"""What the hub needs to believe only what devices can prove: state proofs and capped dead
letters.

Device states gain the door's store epoch, the newest list version it has seen, its session
take-overs and current faults, and a count of refused (forged) states. Dead letters keep a
capped prefix of a payload with its size and SHA-256; payloads already stored are cut down to
the same prefix here, so an attack before this version stops costing disk.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Spelled out, not imported from hub.db: a migration must not change when the models do.
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
#: As hub.ingest.batch.DEAD_LETTER_PREFIX when this migration was written.
PREFIX_BYTES = 4096

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device_states") as table:
        table.add_column(sa.Column("epoch", sa.String(16)))
        table.add_column(sa.Column("seen_version", sa.Integer))
        table.add_column(sa.Column("takeovers", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("faults", Json))
        table.add_column(
            sa.Column("refused_states", sa.Integer, nullable=False, server_default="0")
        )
        table.add_column(sa.Column("refused_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("dead_letters") as table:
        table.add_column(sa.Column("payload_bytes", sa.BigInteger))
        table.add_column(sa.Column("payload_sha256", sa.String(64)))
    _cap_dead_letters()


def _cap_dead_letters() -> None:
    """Cut stored payloads to their prefix, keeping size and hash; one row at a time, so a
    table of large payloads never sits in memory at once."""
    conn = op.get_bind()
    letters = sa.table(
        "dead_letters",
        sa.column("id", sa.BigInteger),
        sa.column("payload", sa.LargeBinary),
        sa.column("payload_bytes", sa.BigInteger),
        sa.column("payload_sha256", sa.String),
    )
    ids = conn.execute(sa.select(letters.c.id).where(letters.c.payload_bytes.is_(None))).scalars()
    for row_id in list(ids):
        payload = conn.execute(
            sa.select(letters.c.payload).where(letters.c.id == row_id)
        ).scalar_one()
        payload = bytes(payload or b"")
        conn.execute(
            letters.update()
            .where(letters.c.id == row_id)
            .values(
                payload=payload[:PREFIX_BYTES],
                payload_bytes=len(payload),
                payload_sha256=hashlib.sha256(payload).hexdigest(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as table:
        table.drop_column("payload_sha256")
        table.drop_column("payload_bytes")
    with op.batch_alter_table("device_states") as table:
        for column in ("refused_at", "refused_states", "faults", "takeovers", "seen_version"):
            table.drop_column(column)
        table.drop_column("epoch")
