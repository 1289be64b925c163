"""How many of a site's desks a day's bookings take: the one count that booking (may one more
be made?) and finding a space (how many are free?) share.

A desk is booked for a whole day or for one half: the morning (opening until ``MIDDAY``) or
the afternoon (``MIDDAY`` until closing). A whole day takes a desk in both halves, so the desks
a day has left are ``desks - max(morning, afternoon)`` and a half's are ``desks - that half``.
An operator's day guest (kind ``day``, from before desks were booked) takes a desk all day.
Cancelled and released bookings take nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, select

from hub import db

#: Where a site's day is cut into a morning and an afternoon (local time).
MIDDAY = time(13, 0)
#: Bookings that hold a desk: made as a desk, or as an operator's day guest.
DESK_KINDS = ("desk", "day")


class Part(StrEnum):
    DAY = "day"
    MORNING = "morning"
    AFTERNOON = "afternoon"


@dataclass(frozen=True)
class Taken:
    """Desks taken in each half of one site's day."""

    morning: int = 0
    afternoon: int = 0

    def in_part(self, part: Part) -> int:
        """Desks taken in ``part`` (a whole day: the fuller half)."""
        if part == Part.MORNING:
            return self.morning
        if part == Part.AFTERNOON:
            return self.afternoon
        return max(self.morning, self.afternoon)


def holding() -> ColumnElement[bool]:
    """Bookings that still hold what they booked: neither cancelled nor released."""
    b = db.bookings.c
    return b.cancelled_at.is_(None) & b.released_at.is_(None)


def _halves() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The desks taken in the morning and in the afternoon, as sums over bookings (a whole
    day, and a booking from before parts, take both)."""
    b = db.bookings.c
    whole = b.part.is_(None) | (b.part == Part.DAY)
    morning = func.sum(case((whole | (b.part == Part.MORNING), 1), else_=0))
    afternoon = func.sum(case((whole | (b.part == Part.AFTERNOON), 1), else_=0))
    return morning, afternoon


def desks_taken(
    conn: Connection, sites: Iterable[str] | None, day: date, *, not_arrived: bool = False
) -> dict[str, Taken]:
    """Each site's desks taken on ``day`` (``sites`` None: every site with a booking), in
    one grouped query over the (site, day) index. Sites without bookings are left out.

    ``not_arrived``: only bookings whose member has not tapped in yet (those the sensors
    cannot count: "free now" takes the larger of the two)."""
    b = db.bookings.c
    morning, afternoon = _halves()
    query = (
        select(b.site_id, morning, afternoon)
        .where(b.day == day, b.kind.in_(DESK_KINDS), holding())
        .group_by(b.site_id)
    )
    if sites is not None:
        # The site ids lead the index: given, each is one probe; left out, a day scans all.
        query = query.where(b.site_id.in_(sorted(set(sites))))
    if not_arrived:
        query = query.where(b.arrived_at.is_(None))
    return {site: Taken(int(m or 0), int(a or 0)) for site, m, a in conn.execute(query)}


def desks_taken_by_day(conn: Connection, site: str, since: date) -> dict[date, Taken]:
    """A site's desks taken on each day from ``since`` on that has a booking."""
    b = db.bookings.c
    morning, afternoon = _halves()
    rows = conn.execute(
        select(b.day, morning, afternoon)
        .where(b.site_id == site, b.day >= since, b.kind.in_(DESK_KINDS), holding())
        .group_by(b.day)
    )
    return {day: Taken(int(m or 0), int(a or 0)) for day, m, a in rows}
