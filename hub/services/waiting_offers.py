"""A freed desk goes to the waiting list: the first member still waiting at that site and day
whose part now fits gets a booking, in the transaction that freed the desk (a cancellation,
a release, a staff removal), after its pool's row was written.

The booking is made as one the member makes themselves would be (``booking_writes``), under
every rule and within the allowance they have now: a member who may no longer book (blocked,
the month's desk days used, the site no longer allowed, a desk held there already) is
skipped and their entry ended with the refusal's words, for them to read. A member whose row
another transaction holds right now (they are booking elsewhere) is left waiting: the
transaction holds the pool and must not wait for a member (``booking_writes``: the order of
locks); the sweeper offers what is still free a minute later (``offer_free_desks``).

Entries whose part is over (its day passed, or its part ended) end as ``expired``: a desk
can no longer be booked for it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import Connection, Row, select, update

from hub import db
from hub.services.allowance import allowance_of, member_terms
from hub.services.booking_counts import Hold, require_free
from hub.services.booking_mail import tell_member
from hub.services.booking_rules import Rule, RuleBroken, SiteRules, blocked, desk_window, refuse
from hub.services.booking_writes import DESKS, insert_booking, lock_member
from hub.services.desk_pool import Part, Taken, desks_taken
from hub.services.errors import NotFound
from hub.services.wording import N_

#: The most members on one site-day's list (and so the most one freed desk is offered to).
MAX_WAITING_PER_DAY = 200
#: The most entries one sweep ends as expired (the next sweep takes the rest).
EXPIRE_BATCH = 1000
#: The halves of the day each part takes a desk in.
HALVES = {
    Part.DAY: (Part.MORNING, Part.AFTERNOON),
    Part.MORNING: (Part.MORNING,),
    Part.AFTERNOON: (Part.AFTERNOON,),
}


class WaitingDay(NamedTuple):
    site: str
    day: date


class Outcome(StrEnum):
    #: Got a desk: ``booking_id`` names the booking.
    BOOKED = "booked"
    #: Left the list.
    LEFT = "left"
    #: The part was over before a desk freed.
    EXPIRED = "expired"
    #: A desk freed, but the member could no longer book it (``reason``).
    REFUSED = "refused"


def end_entry(
    conn: Connection,
    entry_id: int,
    outcome: Outcome,
    now: datetime,
    reason: str | None = None,
    booking_id: int | None = None,
) -> bool:
    """End a waiting entry that has not ended yet; False if it had."""
    w = db.waiting_list.c
    ended = {"ended_at": now, "outcome": outcome, "booking_id": booking_id}
    ended["reason"] = reason[:500] if reason else None
    statement = update(db.waiting_list).where(w.id == entry_id, w.ended_at.is_(None))
    return conn.execute(statement.values(ended)).rowcount > 0


def offer_desks(
    conn: Connection, site: str, day: date, now: datetime, sends_mail: bool
) -> list[Row]:
    """Give the desks free at ``site`` on ``day`` to the members waiting for them, first come
    first served; returns the bookings made. The caller holds the pool (``lock_pool``)."""
    try:
        rules = SiteRules.load(conn, site)
    except NotFound:
        return []
    if not rules.desks:
        return []
    taken = desks_taken(conn, [site], day).get(site, Taken())
    free = {half: rules.desks - taken.in_part(half) for half in HALVES[Part.DAY]}
    if max(free.values()) <= 0:
        return []
    w = db.waiting_list.c
    entries = conn.execute(
        select(db.waiting_list)
        .where(w.site_id == site, w.day == day, w.ended_at.is_(None))
        .order_by(w.id)
        .limit(MAX_WAITING_PER_DAY)
    ).all()
    made = []
    for entry in entries:
        halves = HALVES[Part(entry.part)]
        if any(free[half] <= 0 for half in halves):
            continue  # no desk in its part: it keeps waiting (a later one's part may fit)
        booking = _give(conn, rules, entry, now)
        if booking is None:
            continue
        made.append(booking)
        for half in halves:
            free[half] -= 1
        if sends_mail:
            tell_member(conn, booking, False)
        if max(free.values()) <= 0:
            break
    return made


def _give(conn: Connection, rules: SiteRules, entry: Row, now: datetime) -> Row | None:
    """Book the desk ``entry`` waits for, or end the entry if its member may no longer have
    it; None if no booking was made (ended, or left waiting)."""
    part, member = Part(entry.part), entry.member_id
    try:
        window = desk_window(rules, entry.day, part, now)
        hold = Hold(window, DESKS, part)
        terms = member_terms(conn, member)
        if terms is None:
            raise refuse(Rule.BLOCKED, N_("you are no longer a member of the network"))
        if terms.blocked:
            raise blocked(member, "you")
        allowance = allowance_of(conn, member, terms, window.starts_at)
        allowance.require_site(rules.id)
        if allowance.days_per_month is not None and not lock_member(conn, member, wait=False):
            return None  # they are booking right now: the next offer asks again
        require_free(conn, rules, member, hold, allowance, "you", now)
    except RuleBroken as refusal:
        if refusal.rule == Rule.FULL:
            return None  # counted free above: cannot happen under the pool's lock
        over = refusal.rule == Rule.PAST
        end_entry(conn, entry.id, Outcome.EXPIRED if over else Outcome.REFUSED, now, str(refusal))
        return None
    booking = insert_booking(
        conn, member, rules.id, "desk", hold, entry.created_by, now, company=allowance.company
    )
    end_entry(conn, entry.id, Outcome.BOOKED, now, booking_id=booking.id)
    return booking


def waiting_days(conn: Connection, limit: int = MAX_WAITING_PER_DAY) -> dict[WaitingDay, set[Part]]:
    """The site-days members are waiting for (soonest first), each with the parts waited
    for."""
    w = db.waiting_list.c
    query = (
        select(w.site_id, w.day, w.part)
        .where(w.ended_at.is_(None))
        .group_by(w.site_id, w.day, w.part)
        .order_by(w.day, w.site_id)
        .limit(limit)
    )
    days: dict[WaitingDay, set[Part]] = {}
    for row in conn.execute(query):
        days.setdefault(WaitingDay(row.site_id, row.day), set()).add(Part(row.part))
    return days


def fits(desks: int | None, taken: Taken, parts: set[Part]) -> bool:
    """Whether a desk is free for any of ``parts``."""
    return bool(desks) and any(
        all(taken.in_part(half) < (desks or 0) for half in HALVES[part]) for part in parts
    )


def end_expired(conn: Connection, now: datetime) -> int:
    """End the entries whose part is over (in their site's time); returns how many."""
    w = db.waiting_list.c
    # A day is over in every zone a day after it ended in UTC: look no further ahead.
    entries = conn.execute(
        select(db.waiting_list)
        .where(w.ended_at.is_(None), w.day <= now.date() + timedelta(days=1))
        .order_by(w.day, w.id)
        .limit(EXPIRE_BATCH)
    ).all()
    sites: dict[str, SiteRules | None] = {}
    ended = 0
    for entry in entries:
        if entry.site_id not in sites:
            try:
                sites[entry.site_id] = SiteRules.load(conn, entry.site_id)
            except NotFound:
                sites[entry.site_id] = None
        rules = sites[entry.site_id]
        if rules is not None:
            window = rules.part_window(entry.day, Part(entry.part))
            # No window: closed that day, or the part outside its hours; over once it passed.
            over = entry.day < rules.today(now) if window is None else window.ends_at <= now
            if not over:
                continue
        reason = f"the {entry.part} of {entry.day} is over: no desk freed for it in time"
        ended += end_entry(conn, entry.id, Outcome.EXPIRED, now, reason)
    return ended
