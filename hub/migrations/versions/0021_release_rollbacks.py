"""Signed rollbacks made from the releases the hub holds.

A door refuses a release older than the one it runs, unless its manifest is a signed
rollback from exactly that version (issue 17). Until now such a manifest could only be added
as a release of its own, under the version it goes back to, which the hub usually held
already. A rollback is now made from a held release (``hafen hub release rollback``) and
kept beside it, one per version rolled back from; ``releases.rollback_from`` goes. A release
added as a rollback before keeps its manifest, and is recorded as the rollback it is.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_rollbacks",
        sa.Column("version", sa.String(64), sa.ForeignKey("releases.version"), primary_key=True),
        sa.Column("rollback_from", sa.String(64), primary_key=True),
        sa.Column("manifest", sa.LargeBinary, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "INSERT INTO release_rollbacks (version, rollback_from, manifest, created_by, created_at)"
        " SELECT version, rollback_from, manifest, 'release add', created_at FROM releases"
        " WHERE rollback_from IS NOT NULL"
    )
    # Not in a batch: SQLite (3.35 on) drops a plain column in place, where a batch would
    # copy the releases table that rollouts and rollbacks refer to.
    op.drop_column("releases", "rollback_from")


def downgrade() -> None:
    op.add_column("releases", sa.Column("rollback_from", sa.String(64)))
    op.drop_table("release_rollbacks")
