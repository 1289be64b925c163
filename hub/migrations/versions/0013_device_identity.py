"""Devices' identities: one-time enrolment tokens, the certificates the CA gave, revocation.

Issue 14 gives every device a certificate of its own, issued when it enrols with a one-time
token; the hub keeps each token's hash and each certificate's serial (the revoked ones make
the CA's revocation list), and when each device enrolled and lost its access.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("devices") as table:
        table.add_column(sa.Column("enrolled_at", When))
        table.add_column(sa.Column("revoked_at", When))
    op.create_table(
        "enrolment_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("used_at", When),
    )
    op.create_index("ix_enrolment_tokens_device", "enrolment_tokens", ["device"])
    op.create_table(
        "device_certificates",
        sa.Column("serial", sa.String(50), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("issued_at", When, nullable=False),
        sa.Column("not_after", When, nullable=False),
        sa.Column("revoked_at", When),
    )
    op.create_index("ix_device_certificates_device", "device_certificates", ["site", "device"])


def downgrade() -> None:
    op.drop_index("ix_device_certificates_device", "device_certificates")
    op.drop_table("device_certificates")
    op.drop_index("ix_enrolment_tokens_device", "enrolment_tokens")
    op.drop_table("enrolment_tokens")
    with op.batch_alter_table("devices") as table:
        table.drop_column("revoked_at")
        table.drop_column("enrolled_at")
