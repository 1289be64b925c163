"""What a change to a site's bookable things would break: bookings still to come that no longer
fit. A change that breaks one is refused, naming what holds it (a Conflict), instead of leaving
more bookings than desks, a booking on a day the site is shut, or a booking in a room that is
gone: the people who booked would find out at the door.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from hub import db
from hub.services.desk_pool import Part, desks_taken_by_day, holding
from hub.services.errors import Conflict

if TYPE_CHECKING:
    from hub.services.sites import Site

#: Days a refusal names at most (the others are counted).
NAMED_DAYS = 3


def site_today(zone: str, now: datetime | None = None) -> date:
    """The site's own calendar day now."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).date()


def refuse_breaking_bookings(conn: Connection, before: Site, after: Site) -> None:
    """Conflict if ``after`` has fewer desks than a day still to come has booked, or shuts a
    day that has bookings."""
    today = site_today(after.timezone)
    if after.desks != before.desks and not _more(after.desks, before.desks):
        _refuse_fewer_desks(conn, after.id, after.desks, today)
    closing = set(after.closed_days or ()) - set(before.closed_days or ())
    if closing:
        _refuse_closing_booked_days(conn, after.id, {d for d in closing if d >= today})


def _more(new: int | None, old: int | None) -> bool:
    """Whether ``new`` desks take at least every booking ``old`` did (None: no desks)."""
    return new is not None and old is not None and new >= old


def _refuse_fewer_desks(conn: Connection, site: str, desks: int | None, today: date) -> None:
    if desks is None:  # no desk bookings any more: only an operator's day guests may stay
        b = db.bookings.c
        booked = conn.execute(
            select(b.day, func.count())
            .where(b.site_id == site, b.day >= today, b.kind == "desk", holding())
            .group_by(b.day)
        ).all()
        over = {day: int(n) for day, n in booked if n}
        if over:
            raise Conflict(
                f"desks: desks are booked on {_days(over)}: cancel those bookings first,"
                " or keep the desks"
            )
        return
    taken = desks_taken_by_day(conn, site, today)
    over = {day: t.in_part(Part.DAY) for day, t in taken.items() if t.in_part(Part.DAY) > desks}
    if over:
        raise Conflict(
            f"desks: more than {desks} are booked on {_days(over)}: keep at least"
            f" {max(over.values())}, or cancel bookings first"
        )


def _refuse_closing_booked_days(conn: Connection, site: str, days: set[date]) -> None:
    if not days:
        return
    b = db.bookings.c
    rows = conn.execute(
        select(b.day, func.count())
        .where(b.site_id == site, b.day.in_(sorted(days)), holding())
        .group_by(b.day)
    ).all()
    booked = {day: int(n) for day, n in rows if n}
    if booked:
        raise Conflict(
            f"closed_days: bookings are made for {_days(booked)}: cancel them first,"
            " or keep the site open then"
        )


def _days(counts: dict[date, int]) -> str:
    """The first days of ``counts`` with their counts, and how many more."""
    ordered = sorted(counts)
    named = ", ".join(f"{day.isoformat()} ({counts[day]})" for day in ordered[:NAMED_DAYS])
    more = len(ordered) - NAMED_DAYS
    return named + (f" and {more} more day{'s' if more > 1 else ''}" if more > 0 else "")


def future_room_bookings(conn: Connection, site: str, room: str) -> tuple[int, int]:
    """How many bookings still to come hold the room, and the most people one brings."""
    b = db.bookings.c
    count, most = conn.execute(
        select(func.count(), func.max(b.attendees)).where(
            b.site_id == site,
            b.kind == "room",
            b.room_id == room,
            b.ends_at > datetime.now(UTC),
            holding(),
        )
    ).one()
    return int(count or 0), int(most or 0)
