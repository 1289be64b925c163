"""Roll-ups kept by ingest for the dashboard and the funders' reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Spelled out, not imported from hub.db: a migration must not change when the models do.
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("company", sa.String(64)),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
    )
    op.create_index("visits_member", "visits", ["member"])
    op.create_table(
        "site_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("visitors", sa.Integer, nullable=False),
    )
    op.create_table(
        "member_months",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("company_days", sa.Integer, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
    )
    op.create_index("member_months_member", "member_months", ["member"])
    op.create_table(
        "occupancy_hours",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("person_seconds", sa.Float, nullable=False),
        sa.Column("occupied_seconds", sa.Float, nullable=False),
        sa.Column("known_seconds", sa.Float, nullable=False),
        sa.Column("peak", sa.Integer, nullable=False),
    )
    op.create_index("occupancy_hours_hour", "occupancy_hours", ["hour"])
    op.create_table(
        "occupancy_months",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("covered_seconds", sa.Float, nullable=False),
        sa.Column("occupied_seconds", sa.Float, nullable=False),
        sa.Column("occupied_hours", sa.Integer, nullable=False),
        sa.Column("median", sa.Float),
        sa.Column("peak", sa.Integer),
    )
    op.create_table(
        "occupancy_now",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("capacity", sa.Integer),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("present", sa.Boolean, nullable=False),
        sa.Column("rooms", Json, nullable=False),
        sa.Column("co2", Json, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "occupancy_now",
        "occupancy_months",
        "occupancy_hours",
        "member_months",
        "visits",
    ):
        op.drop_table(table)
