"""The rules a booking must pass at the hub, and the words it is refused with.

Each refusal names its rule and says what would work instead. The rules, in the order they
are asked (the first broken one answers; ``allowance`` and ``bookings`` ask the last ones):

========================  ======  ==========================================================
rule                      status  refused when (and what the message offers instead)
========================  ======  ==========================================================
``no_desks``              422     the site has no desks to book (``desks`` NULL or 0)
``no_room``               422     the site has no such room (its rooms)
``past``                  422     the day, part or time is over (a later part or day)
``too_far``               422     beyond the site's ``horizon_days`` (the last day that can)
``closed``                422     a closed day or a weekday without hours (the open days)
``outside_hours``         422     the part or time is outside that day's hours (the hours,
                                  the part that is open)
``off_quarter``           422     a room's times are not on a quarter hour (rounded times)
``too_many_people``       422     more attendees than the room seats (rooms that fit)
``blocked``               422     the member is blocked
``no_booking``            422     the member's membership includes no booking (whom to ask)
``site_not_allowed``      422     the site is not among the member's allowed sites (those)
``holds_desk``            409     the member holds a desk there that day in an overlapping
                                  part (the booking they hold)
``days_used``             409     the member's desk days of that month are used (the next
                                  month); a half day counts as a day
``full``                  409     no desk left in that part (the other half, the waiting list)
``room_taken``            409     the room is booked then (its free times that day)
``cancel_too_late``       409     a member or company admin cancels after the site's cut-off
========================  ======  ==========================================================

422: the request can never be made as it stands; 409: it could, but what is booked already
(or the clock) stands in the way.

Times: a site's day is its local calendar day, cut at ``desk_pool.MIDDAY`` into a morning and
an afternoon; its hours on a day run from the earliest start to the latest end of the weekly
windows that list that weekday (a window past midnight ends the day at 24:00: booking never
crosses a day). ``opening_hours`` NULL: open all day, every day; ``closed_days`` shuts
single dates (holidays).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, bindparam, select

from hafen.acl import TimeWindow
from hub import db
from hub.services.desk_pool import MIDDAY, Part
from hub.services.errors import Conflict, Invalid, NotFound, ServiceError
from hub.services.wording import N_, Joined, Value, Words, words

DAY_MINUTES = 24 * 60
QUARTER = 15
_MIDDAY = MIDDAY.hour * 60 + MIDDAY.minute
#: Each part of the day as minutes from local midnight, [start, end).
PART_MINUTES = {
    Part.DAY: (0, DAY_MINUTES),
    Part.MORNING: (0, _MIDDAY),
    Part.AFTERNOON: (_MIDDAY, DAY_MINUTES),
}
_WEEKDAY = tuple(
    Words(d) for d in (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
)
_WEEKDAYS = tuple(
    Words(d)
    for d in (
        N_("Mondays"),
        N_("Tuesdays"),
        N_("Wednesdays"),
        N_("Thursdays"),
        N_("Fridays"),
        N_("Saturdays"),
        N_("Sundays"),
    )
)
#: The parts of the day as messages name them ("the morning of ...").
PART_WORDS = {
    Part.DAY: Words(N_("day")),
    Part.MORNING: Words(N_("morning")),
    Part.AFTERNOON: Words(N_("afternoon")),
}


class Rule(StrEnum):
    NO_DESKS = "no_desks"
    NO_ROOM = "no_room"
    PAST = "past"
    TOO_FAR = "too_far"
    CLOSED = "closed"
    OUTSIDE_HOURS = "outside_hours"
    OFF_QUARTER = "off_quarter"
    TOO_MANY_PEOPLE = "too_many_people"
    BLOCKED = "blocked"
    NO_BOOKING = "no_booking"
    SITE_NOT_ALLOWED = "site_not_allowed"
    HOLDS_DESK = "holds_desk"
    DAYS_USED = "days_used"
    FULL = "full"
    ROOM_TAKEN = "room_taken"
    CANCEL_TOO_LATE = "cancel_too_late"


class RuleBroken(ServiceError):
    """A booking (or cancellation) refused by a rule; ``rule`` names it, the message says
    what would work instead (in English; ``words`` in the page's language too)."""

    def __init__(self, rule: Rule, message: str | Words) -> None:
        super().__init__(message)
        self.rule = rule


class BookingInvalid(RuleBroken, Invalid):
    """A booking that can never be made as asked (422)."""


class BookingConflict(RuleBroken, Conflict):
    """A booking (or cancellation) that what is booked already, or the clock, stands in the
    way of (409)."""


_CONFLICTS = {
    Rule.HOLDS_DESK,
    Rule.DAYS_USED,
    Rule.FULL,
    Rule.ROOM_TAKEN,
    Rule.CANCEL_TOO_LATE,
}


def blocked(member: str, subject: str | None) -> ServiceError:
    """The refusal of a blocked member; ``subject`` "you" when they book for themselves."""
    if subject == "you":
        return refuse(Rule.BLOCKED, N_("you are blocked; ask the network's management"))
    return refuse(
        Rule.BLOCKED, N_("%(member)s is blocked; ask the network's management"), member=member
    )


def refuse(rule: Rule, text: str, **values: Value) -> ServiceError:
    """The error that refuses a booking by ``rule`` (raise it): ``text`` is the message with
    ``%(name)s`` places for ``values``, marked ``N_`` so that pages can translate it."""
    message = Words(text, values)
    if rule in _CONFLICTS:
        return BookingConflict(rule, message)
    return BookingInvalid(rule, message)


@dataclass(frozen=True)
class Window:
    """What a booking holds: its site's local day and its time, in UTC."""

    day: date
    starts_at: datetime
    ends_at: datetime


#: Built once: building a statement costs more than SQLite takes to run it (booking's hot path).
_SITE = select(db.sites).where(db.sites.c.id == bindparam("site"))


@dataclass(frozen=True)
class SiteRules:
    """What booking needs to know of a site."""

    id: str
    zone: ZoneInfo
    desks: int | None
    opening: tuple[TimeWindow, ...] | None
    closed_days: frozenset[date]
    horizon_days: int
    cancel_minutes: int

    @classmethod
    def load(cls, conn: Connection, site: str) -> SiteRules:
        row = conn.execute(_SITE, {"site": site}).one_or_none()
        if row is None:
            raise NotFound(f"no site {site!r}")
        return cls.of(row)

    @classmethod
    def of(cls, row: Row) -> SiteRules:
        """The rules of a ``db.sites`` row."""
        opening = row.opening_hours
        return cls(
            id=row.id,
            zone=ZoneInfo(row.timezone),
            desks=row.desks,
            opening=None
            if opening is None
            else tuple(TimeWindow.model_validate(w) for w in opening),
            closed_days=frozenset(date.fromisoformat(d) for d in row.closed_days or []),
            horizon_days=row.horizon_days,
            cancel_minutes=row.cancel_minutes,
        )

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def last_day(self, now: datetime) -> date:
        """The last day that can be booked now."""
        return self.today(now) + timedelta(days=self.horizon_days)

    def at(self, day: date, minute: int) -> datetime:
        """The instant (UTC) of ``minute`` after local midnight of ``day`` (up to 24:00)."""
        if minute >= DAY_MINUTES:
            day, minute = day + timedelta(days=1), minute - DAY_MINUTES
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.zone)
        return local.astimezone(UTC)

    def open_days(self) -> set[int]:
        """The weekdays with hours (every one without opening hours)."""
        if self.opening is None:
            return set(range(7))
        return {int(d) for w in self.opening for d in w.days}

    def hours(self, day: date) -> tuple[int, int] | None:
        """The day's hours as minutes after local midnight, [open, close); None: closed."""
        if day in self.closed_days:
            return None
        if self.opening is None:
            return 0, DAY_MINUTES
        spans = [_span(w) for w in self.opening if day.weekday() in w.days]
        if not spans:
            return None
        return min(s for s, _ in spans), max(e for _, e in spans)

    def next_open_day(self, after: date, now: datetime) -> date | None:
        """The first day after ``after`` with hours, within the horizon."""
        day = after + timedelta(days=1)
        while day <= self.last_day(now):
            if self.hours(day) is not None:
                return day
            day += timedelta(days=1)
        return None

    def part_window(self, day: date, part: Part) -> Window | None:
        """``part`` of ``day`` clipped to the day's hours; None if they do not meet."""
        hours = self.hours(day)
        if hours is None:
            return None
        start, end = PART_MINUTES[part]
        start, end = max(start, hours[0]), min(end, hours[1])
        if start >= end:
            return None
        return Window(day, self.at(day, start), self.at(day, end))


def _span(window: TimeWindow) -> tuple[int, int]:
    start, end = _minutes(window.start), _minutes(window.end)
    return start, end if end > start else DAY_MINUTES  # past midnight: the day ends at 24:00


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def span_text(start: int, end: int) -> str:
    return f"{clock(start)}–{clock(end)}"


def weekdays_text(days: set[int]) -> Joined:
    """Weekdays as runs: {0, 1, 2, 3, 4} is "Mon–Fri", {0, 2, 5} "Mon, Wed, Sat"."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return Joined(
        [
            _WEEKDAY[r[0]] if len(r) == 1 else Joined([_WEEKDAY[r[0]], _WEEKDAY[r[-1]]], "–")
            for r in runs
        ]
    )


def _hours_text(site: SiteRules, day: date) -> Words:
    hours = site.hours(day)
    assert hours is not None
    return words(
        N_("%(site)s is open %(hours)s on %(weekdays)s"),
        site=site.id,
        hours=span_text(*hours),
        weekdays=_WEEKDAYS[day.weekday()],
    )


# -- the rules of when: each raises the refusal, or returns what the booking will hold -------


def require_desks(site: SiteRules) -> int:
    """The site's desks; refused where there are none to book."""
    if not site.desks:
        raise refuse(
            Rule.NO_DESKS,
            N_("%(site)s has no desks to book; try another space of the network"),
            site=site.id,
        )
    return site.desks


def require_day(site: SiteRules, day: date, now: datetime) -> None:
    """``day`` is neither over, nor beyond the horizon, nor a day the site is closed."""
    today = site.today(now)
    if day < today:
        raise refuse(
            Rule.PAST, N_("%(day)s is over; book %(today)s or a later day"), day=day, today=today
        )
    if day > site.last_day(now):
        raise refuse(
            Rule.TOO_FAR,
            N_("%(site)s takes bookings up to %(days)s days ahead: until %(last)s"),
            site=site.id,
            days=site.horizon_days,
            last=site.last_day(now),
        )
    if site.hours(day) is not None:
        return
    upcoming = site.next_open_day(day, now)
    if day in site.closed_days:
        if upcoming is None:
            raise refuse(Rule.CLOSED, N_("%(site)s is closed on %(day)s"), site=site.id, day=day)
        raise refuse(
            Rule.CLOSED,
            N_("%(site)s is closed on %(day)s; the next open day is %(next)s"),
            site=site.id,
            day=day,
            next=upcoming,
        )
    open_days = site.open_days()
    if not open_days:
        raise refuse(
            Rule.CLOSED, N_("%(site)s has no opening hours yet; ask its operator"), site=site.id
        )
    raise refuse(
        Rule.CLOSED,
        N_("%(site)s is closed on %(weekdays)s; open %(open)s"),
        site=site.id,
        weekdays=_WEEKDAYS[day.weekday()],
        open=weekdays_text(open_days),
    )


def desk_window(site: SiteRules, day: date, part: Part, now: datetime) -> Window:
    """A desk's time: ``part`` of ``day`` within the site's hours, not over yet."""
    require_desks(site)
    require_day(site, day, now)
    window = site.part_window(day, part)
    if window is None:
        fits = [p for p in (Part.MORNING, Part.AFTERNOON) if site.part_window(day, p)]
        hours, outside = _hours_text(site, day), PART_WORDS[part]
        if not fits:
            raise refuse(
                Rule.OUTSIDE_HOURS,
                N_("%(hours)s: the %(part)s is outside them"),
                hours=hours,
                part=outside,
            )
        raise refuse(
            Rule.OUTSIDE_HOURS,
            N_("%(hours)s: the %(part)s is outside them; book the %(fits)s"),
            hours=hours,
            part=outside,
            fits=PART_WORDS[fits[0]],
        )
    if window.ends_at <= now:
        # Only a morning can be over while its afternoon is not.
        afternoon = site.part_window(day, Part.AFTERNOON) if part == Part.MORNING else None
        if afternoon is not None and afternoon.ends_at > now:
            text = N_(
                "the %(part)s of %(day)s at %(site)s is over; book the afternoon or a later day"
            )
        else:
            text = N_("the %(part)s of %(day)s at %(site)s is over; book a later day")
        raise refuse(Rule.PAST, text, part=PART_WORDS[part], day=day, site=site.id)
    return window


def timed_window(
    site: SiteRules, starts_at: datetime, ends_at: datetime, now: datetime, quarters: bool
) -> Window:
    """A time given by its start and end (a room; an operator's day guest): on one of the
    site's days, within its hours, not over; on quarter hours if ``quarters``."""
    if quarters and not (_on_quarter(site, starts_at) and _on_quarter(site, ends_at)):
        earlier, later = _round(site, starts_at, up=False), _round(site, ends_at, up=True)
        raise refuse(
            Rule.OFF_QUARTER,
            N_(
                "rooms are booked in quarter hours (:00, :15, :30, :45): for example"
                " %(start)s–%(end)s"
            ),
            start=f"{earlier:%H:%M}",
            end=f"{later:%H:%M}",
        )
    if ends_at <= now:
        local_now = now.astimezone(site.zone)
        raise refuse(
            Rule.PAST,
            N_("that time at %(site)s is over; book one after %(now)s"),
            site=site.id,
            now=f"{local_now:%Y-%m-%d %H:%M}",
        )
    day = starts_at.astimezone(site.zone).date()
    require_day(site, day, now)
    hours = site.hours(day)
    assert hours is not None  # require_day refused a closed day
    if starts_at < site.at(day, hours[0]) or ends_at > site.at(day, hours[1]):
        raise refuse(
            Rule.OUTSIDE_HOURS,
            N_("%(hours)s (%(day)s); book within them (a booking lies within one day)"),
            hours=_hours_text(site, day),
            day=day,
        )
    return Window(day, starts_at, ends_at)


def _on_quarter(site: SiteRules, instant: datetime) -> bool:
    local = instant.astimezone(site.zone)
    return local.minute % QUARTER == 0 and local.second == 0 and local.microsecond == 0


def _round(site: SiteRules, instant: datetime, up: bool) -> datetime:
    """The quarter hour (local) at or before ``instant``, or at or after it if ``up``."""
    local = instant.astimezone(site.zone)
    floor = local.replace(minute=local.minute - local.minute % QUARTER, second=0, microsecond=0)
    if up and floor < local:
        return floor + timedelta(minutes=QUARTER)
    return floor
