"""One booking system for the network (issue 16).

Sites get a place (coordinates, address), desks, closed days and their booking rules (how far
ahead, the cancellation cut-off, the check-in grace time); rooms are bookable by the hour.
Bookings get the local day and part of the day they count against, a room, who made them, and
the check-in (the first tap) or the release. Plans and companies get allowances (desk days a
month) and plans whether they let members in without a booking. Users get the member they are
or the company they look after (the ``member`` and ``company_admin`` roles). New tables: the
pools a booking locks, the waiting list, sign-in links, calendar feeds, staff allowances and
the mail outbox.

Existing bookings get their site's local day from their start, so that they count against the
new pools; their part stays NULL (a whole-stay operator booking, counted as a day).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:20:00
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _columns()
    _tables()
    _fill_booking_days()


def _columns() -> None:
    with op.batch_alter_table("sites") as table:
        table.add_column(sa.Column("latitude", sa.Float))
        table.add_column(sa.Column("longitude", sa.Float))
        table.add_column(sa.Column("address", sa.String(300)))
        table.add_column(sa.Column("desks", sa.Integer))
        table.add_column(sa.Column("closed_days", Json))
        for name in ("horizon_days", "cancel_minutes", "grace_minutes"):
            table.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="60"))
    with op.batch_alter_table("plans") as table:
        table.add_column(sa.Column("days_per_month", sa.Integer))
        table.add_column(
            sa.Column("access", sa.String(10), nullable=False, server_default="standing")
        )
    with op.batch_alter_table("companies") as table:
        table.add_column(sa.Column("days_per_person", sa.Integer))
    with op.batch_alter_table("bookings") as table:
        table.add_column(sa.Column("day", sa.Date))
        table.add_column(sa.Column("part", sa.String(10)))
        table.add_column(sa.Column("room_id", sa.String(64)))
        table.add_column(sa.Column("attendees", sa.Integer))
        table.add_column(sa.Column("booked_by", sa.BigInteger))
        table.add_column(sa.Column("arrived_at", When))
        table.add_column(sa.Column("released_at", When))
        table.create_index("bookings_site_day", ["site_id", "day"])
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("member_id", sa.String(64)))
        table.add_column(sa.Column("company_id", sa.String(64)))
        table.create_unique_constraint("uq_users_member_id", ["member_id"])
        table.create_index("ix_users_company_id", ["company_id"])


def _tables() -> None:
    op.create_table(
        "rooms",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("seats", sa.Integer, nullable=False),
    )
    op.create_table(
        "booking_pools",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("resource", sa.String(80), primary_key=True),
        sa.Column("changes", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "waiting_list",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("part", sa.String(10), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("created_by", sa.BigInteger),
        sa.Column("booking_id", sa.BigInteger),
        sa.Column("ended_at", When),
    )
    op.create_index("waiting_list_site_day", "waiting_list", ["site_id", "day", "id"])
    op.create_index("ix_waiting_list_member_id", "waiting_list", ["member_id"])
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.BigInteger,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("used_at", When),
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
    )
    op.create_table(
        "allowances",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("days_per_month", sa.Integer),
        sa.Column("sites", Json),
        sa.Column("updated_at", When, nullable=False),
    )
    op.create_table(
        "mail_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("ics", sa.Text),
        sa.Column("created_at", When, nullable=False),
        sa.Column("next_try_at", When, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent_at", When),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("mail_outbox_due", "mail_outbox", ["sent_at", "next_try_at"])


def _fill_booking_days() -> None:
    """Each existing booking's day: its start, in its site's time zone."""
    conn = op.get_bind()
    zones: dict[str, str] = dict(conn.execute(sa.text("SELECT id, timezone FROM sites")).all())
    rows = conn.execute(sa.text("SELECT id, site_id, starts_at FROM bookings")).all()
    for booking, site, starts_at in rows:
        if isinstance(starts_at, str):  # SQLite without type information hands back text
            starts_at = datetime.fromisoformat(starts_at)
        if starts_at.tzinfo is None:
            starts_at = starts_at.replace(tzinfo=UTC)
        day = starts_at.astimezone(ZoneInfo(zones.get(site) or "Europe/Berlin")).date()
        conn.execute(
            sa.text("UPDATE bookings SET day = :day WHERE id = :id"), {"day": day, "id": booking}
        )


def downgrade() -> None:
    for name in ("mail_outbox", "allowances", "calendar_feeds", "invitations"):
        op.drop_table(name)
    op.drop_index("ix_waiting_list_member_id", "waiting_list")
    op.drop_index("waiting_list_site_day", "waiting_list")
    for name in ("waiting_list", "booking_pools", "rooms"):
        op.drop_table(name)
    with op.batch_alter_table("users") as table:
        table.drop_index("ix_users_company_id")
        table.drop_constraint("uq_users_member_id", type_="unique")
        table.drop_column("company_id")
        table.drop_column("member_id")
    with op.batch_alter_table("bookings") as table:
        table.drop_index("bookings_site_day")
        for name in ("released_at", "arrived_at", "booked_by", "attendees", "room_id", "part"):
            table.drop_column(name)
        table.drop_column("day")
    with op.batch_alter_table("companies") as table:
        table.drop_column("days_per_person")
    with op.batch_alter_table("plans") as table:
        table.drop_column("access")
        table.drop_column("days_per_month")
    with op.batch_alter_table("sites") as table:
        for name in ("grace_minutes", "cancel_minutes", "horizon_days", "closed_days", "desks"):
            table.drop_column(name)
        for name in ("address", "longitude", "latitude"):
            table.drop_column(name)
