"""What a change to a site's bookable things does to the bookings not yet over: those that
would no longer fit it. A change that leaves one is refused (a Conflict saying how many and
why) unless the caller asks to cancel them (``cancel_affected``): then they are cancelled in
the change's transaction, their grants go and their members are told by mail. Never silently
more bookings than desks, a booking on a day the site is shut or outside its hours, or in a
room that is gone or too small: the people who booked would find out at the door.

What no longer fits a site's new settings (``site_affected``):

- a booking outside the new hours: on its site's local day in the (new) time zone, the site
  is closed (a weekday without hours, a closed day), or the booking starts before it opens
  or ends after it closes, or that day is no longer the day the booking counts against;
- with no desks any more (``desks`` NULL), every desk booking (an operator's day guests
  stay);
- fewer desks than are booked on a day: the desk bookings made latest that day, one after
  the other, until each half of the day (morning, afternoon) holds no more than the desks;
  a booking only counts if it takes a half that is over (a morning does not help a full
  afternoon). The latest made go first: the earliest booked were promised the desk first.

What no longer fits a room's change (``room_affected``): every booking of a room removed; the
bookings that bring more people than a room's new seats.

The caller has written the site's row first (``booking_writes.lock_site``): no booking of
the site commits between this count and the change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, select

from hub import db
from hub.services.booking_mail import Because
from hub.services.booking_rules import SiteRules
from hub.services.desk_pool import DESK_KINDS, Part, holding
from hub.services.errors import Conflict
from hub.services.freeing import Freed, cancel_all

if TYPE_CHECKING:
    from hub.services.sites import Site

#: Days a refusal names at most (the others are counted).
NAMED_DAYS = 3


@dataclass(frozen=True)
class OnAffected:
    """What a change of a site or a room does with the bookings it affects: ``cancel`` them
    (else the change is refused), telling their members by mail if ``sends_mail``."""

    cancel: bool = False
    sends_mail: bool = False
    now: datetime | None = None


#: Refuse a change that affects bookings (what a change does unless told otherwise).
REFUSE = OnAffected()


@dataclass(frozen=True)
class Affected:
    """The bookings a change would leave not fitting, by why."""

    #: Outside the new hours, on a closed day, or with no desks any more.
    outside: tuple[Row, ...] = ()
    #: More than the new desks, or the room's new seats, or in a room that is gone.
    over: tuple[Row, ...] = ()

    def __len__(self) -> int:
        return len(self.outside) + len(self.over)

    def rows(self) -> list[Row]:
        return [*self.outside, *self.over]


def _not_over(conn: Connection, site: str, now: datetime) -> list[Row]:
    b = db.bookings.c
    query = select(db.bookings).where(b.site_id == site, b.ends_at > now, holding())
    return list(conn.execute(query.order_by(b.day, b.id)))


def site_affected(
    conn: Connection, rules: SiteRules, desks_changed: bool, now: datetime
) -> Affected:
    """The bookings not over yet that the site's new ``rules`` leave (see the module);
    ``desks_changed``: whether its desks are counted again."""
    outside: list[Row] = []
    inside: list[Row] = []
    for row in _not_over(conn, rules.id, now):
        shut = rules.desks is None and row.kind == "desk"
        (outside if shut or not _in_hours(rules, row) else inside).append(row)
    over: list[Row] = []
    if desks_changed and rules.desks is not None:
        desks = rules.desks
        by_day: dict[date, list[Row]] = defaultdict(list)
        for row in inside:
            if row.kind in DESK_KINDS and row.day is not None:
                by_day[row.day].append(row)
        for rows in by_day.values():
            over += _latest_beyond(rows, desks)
    return Affected(tuple(outside), tuple(over))


def site_change(conn: Connection, before: Site, after: Site, now: datetime) -> Affected:
    """What changing the site from ``before`` to ``after`` leaves (``site_affected``);
    nothing is read unless its hours, closed days, zone or desks change."""
    hours_changed = (before.opening_hours, before.closed_days, before.timezone) != (
        after.opening_hours,
        after.closed_days,
        after.timezone,
    )
    desks_changed = before.desks != after.desks
    if not hours_changed and not desks_changed:
        return Affected()
    rules = SiteRules(
        id=after.id,
        zone=ZoneInfo(after.timezone),
        desks=after.desks,
        opening=None if after.opening_hours is None else tuple(after.opening_hours),
        closed_days=frozenset(after.closed_days or ()),
        horizon_days=after.horizon_days,
        cancel_minutes=after.cancel_minutes,
    )
    affected = site_affected(conn, rules, desks_changed, now)
    if hours_changed:
        return affected
    # Only the desks changed: a booking outside the hours already is not this change's.
    shut = tuple(r for r in affected.outside if r.kind == "desk" and after.desks is None)
    return Affected(shut, affected.over)


def site_refusal(affected: Affected, desks: int | None) -> str:
    """Why a site's change is refused: how many bookings it affects, and how."""
    parts = []
    if affected.outside:
        parts.append(
            f"{bookings(len(affected.outside))} would lie outside its hours, on a day it is"
            f" closed, or take a desk it no longer has, on {_days(affected.outside)}"
        )
    if affected.over:
        parts.append(
            f"{bookings(len(affected.over))} would take more than its {desks} desks, the latest"
            f" made on {_days(affected.over)}"
        )
    return f"this change affects {bookings(len(affected))} not over yet: " + "; ".join(parts)


def _days(rows: Sequence[Row]) -> str:
    """The first days of ``rows`` with how many of them each has, and how many more."""
    counts: dict[date, int] = defaultdict(int)
    for row in rows:
        counts[row.day or db.aware(row.starts_at).date()] += 1
    ordered = sorted(counts)
    named = ", ".join(f"{day.isoformat()} ({counts[day]})" for day in ordered[:NAMED_DAYS])
    more = len(ordered) - NAMED_DAYS
    return named + (f" and {more} more day{'s' if more > 1 else ''}" if more > 0 else "")


def _in_hours(rules: SiteRules, booking: Row) -> bool:
    starts, ends = db.aware(booking.starts_at), db.aware(booking.ends_at)
    day = starts.astimezone(rules.zone).date()
    hours = rules.hours(day)
    if hours is None or (booking.day is not None and booking.day != day):
        return False
    return rules.at(day, hours[0]) <= starts and ends <= rules.at(day, hours[1])


def _halves(booking: Row) -> tuple[Part, ...]:
    if booking.part in (Part.MORNING, Part.AFTERNOON):
        return (Part(booking.part),)
    return Part.MORNING, Part.AFTERNOON  # a whole day, a day guest, one from before parts


def _latest_beyond(rows: Sequence[Row], desks: int) -> list[Row]:
    """The bookings of one day to cancel so that no half holds more than ``desks``: the
    latest made first, each only if it takes a half that is over."""
    taken = {Part.MORNING: 0, Part.AFTERNOON: 0}
    for row in rows:
        for half in _halves(row):
            taken[half] += 1
    beyond = []
    for row in sorted(rows, key=lambda r: (db.aware(r.created_at), r.id), reverse=True):
        if all(n <= desks for n in taken.values()):
            break
        if any(taken[half] > desks for half in _halves(row)):
            beyond.append(row)
            for half in _halves(row):
                taken[half] -= 1
    return beyond


def room_affected(
    conn: Connection, site: str, room: str, seats: int | None, now: datetime
) -> Affected:
    """The room's bookings not over yet that bring more people than ``seats`` (None: the
    room is removed: all of them)."""
    rows = [r for r in _not_over(conn, site, now) if r.kind == "room" and r.room_id == room]
    return Affected(over=tuple(r for r in rows if seats is None or (r.attendees or 1) > seats))


def bookings(count: int) -> str:
    return "1 booking" if count == 1 else f"{count} bookings"


def settle(
    conn: Connection,
    affected: Affected,
    on: OnAffected,
    refusal: str,
    because: Because,
    now: datetime,
) -> list[Freed]:
    """Refuse the change (a Conflict: ``refusal``, which says how many bookings it affects
    and why) unless nothing is affected or the caller asked to cancel what is (``on``); then
    cancel it, telling each member ``because``. The caller tells the doors after the commit
    (``freeing.tell_doors``)."""
    if not affected:
        return []
    if not on.cancel:
        raise Conflict(
            f"{refusal}: cancel them first, or make the change with cancel_affected to cancel"
            " them (their members are told)"
        )
    return cancel_all(conn, affected.rows(), now, on.sends_mail, because)
