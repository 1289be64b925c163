"""Bookings and waiting-list entries keep the company that made or paid for them.

An employer may see, count and end only what its allowance paid for: the bookings made within
the company's allowance (by its admin for its staff, or by one of its staff for themselves
while on it) and the waiting-list entries its admin made. Who is on the staff now tells
neither: a member's private bookings from before they joined, or after they left, are not the
employer's. ``company_id`` is set when a booking is made or an entry joins the list.

What can be known of older rows is filled in: a booking or entry made by a company admin for
someone other than themselves was made for their company's staff, within its allowance. A
member's own booking may have been within an employer's allowance or a plan of their own; the
store never said which, so it stays NULL: private, as everything was before this revision
treated it when staff were taken off.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_users = sa.table("users", sa.column("id"), sa.column("company_id"), sa.column("member_id"))


def upgrade() -> None:
    with op.batch_alter_table("bookings") as table:
        table.add_column(sa.Column("company_id", sa.String(64)))
        table.create_index("bookings_company_day", ["company_id", "day"])
    with op.batch_alter_table("waiting_list") as table:
        table.add_column(sa.Column("company_id", sa.String(64)))
    _fill("bookings", "booked_by")
    _fill("waiting_list", "created_by")


def _fill(name: str, made_by: str) -> None:
    """Rows a company admin made for someone other than themselves get the admin's company."""
    rows = sa.table(name, sa.column("company_id"), sa.column("member_id"), sa.column(made_by))
    maker = rows.c[made_by]
    company = (
        sa.select(_users.c.company_id)
        .where(
            _users.c.id == maker,
            _users.c.company_id.is_not(None),
            sa.or_(_users.c.member_id.is_(None), _users.c.member_id != rows.c.member_id),
        )
        .scalar_subquery()
    )
    op.execute(rows.update().where(maker.is_not(None)).values(company_id=company))


def downgrade() -> None:
    with op.batch_alter_table("waiting_list") as table:
        table.drop_column("company_id")
    with op.batch_alter_table("bookings") as table:
        table.drop_index("bookings_company_day")
        table.drop_column("company_id")
