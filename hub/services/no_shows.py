"""The tap is the check-in: a booking whose member has not tapped in at its site by its start
plus the site's grace time (``sites.grace_minutes``; from when it was made, for one made
after its start) is released back to the pool, its member told, and the freed desk given to
the waiting list (``freeing``). ``hafen hub serve`` sweeps every minute (hub.sweeper).

Nobody checks in by hand at the booking tools hafen replaces, so their release either never
fires or punishes the honest. Here the door's own record decides (hub.arrivals), so the
sweep must only act on what the doors have told the hub, and only while ingest, which stores
what they tell, has been listening throughout (hub.ingest_beats): else every release is
held. A door that is offline still lets members in from the list it holds, and sends those
taps when it is back: a release at a site with any door (not revoked) that is not online is
held; so is one at a site whose door came back (or said anything new) less than ``SETTLE``
ago, while its backlog of taps may still be on its way. A door states itself only on
connecting and when something changes (there is no heartbeat), so an old online state is a
door online without a break. ``SETTLE`` also passes after each deadline before its booking
goes: a tap just before it may still be in flight, or a link may have died without the
broker noticing yet (1.5 keep-alives). Held bookings are released by a later sweep, once
the doors are back and settled; while the booking has not ended. A site without a door
cannot see a tap: nothing is released there.

Several hub processes may sweep one store: each booking is freed in a transaction of its own
that writes its pool's row first and claims the booking's row (``freeing``), so a booking is
released once, and a second sweep finds nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, Row, and_, or_, select

from hub import db
from hub.access_lists import AclPublisher
from hub.ingest_beats import listening
from hub.services.booking_writes import DESKS, lock_pool, writing
from hub.services.desk_pool import Taken, desks_taken, holding
from hub.services.freeing import Ending, Freed, free, tell_doors, tell_members
from hub.services.waiting_offers import WaitingDay, end_expired, fits, offer_desks, waiting_days

log = logging.getLogger(__name__)

#: How long after a door is back (or a deadline passed) before taps count as all told.
SETTLE = timedelta(minutes=2)
#: The most bookings one sweep looks at (the next sweep, a minute later, takes the rest).
BATCH = 500
#: Sites named at most in the log line of held releases.
LOGGED_SITES = 10


@dataclass
class Sweep:
    """What one sweep did."""

    #: Bookings released.
    released: list[int] = field(default_factory=list)
    #: Bookings due but held: a door of their site is offline, or just back.
    held: int = 0
    held_sites: list[str] = field(default_factory=list)
    #: Why every release was held, if ingest has not been listening (hub.ingest_beats).
    unheard: str = ""
    #: Bookings due at sites without a door (never released).
    doorless: int = 0
    #: Bookings made from the waiting list (for released desks, or desks found free).
    given: list[int] = field(default_factory=list)
    #: Waiting entries ended because their part was over.
    expired: int = 0


def sweep(
    engine: Engine,
    publisher: AclPublisher | None,
    now: datetime | None = None,
    sends_mail: bool = False,
    settle: timedelta = SETTLE,
) -> Sweep:
    """One round of the sweeper: release the no-shows, end waiting entries that are over,
    and give any desk still free to the waiting list."""
    now = now or datetime.now(UTC)
    done = release_no_shows(engine, publisher, now, sends_mail, settle)
    with writing(engine), engine.begin() as conn:
        done.expired = end_expired(conn, now)
    done.given += offer_free_desks(engine, publisher, now, sends_mail)
    if done.held:
        shown = ", ".join(done.held_sites[:LOGGED_SITES])
        more = " ..." if len(done.held_sites) > LOGGED_SITES else ""
        log.info("%d releases held: a door of %s is offline or just back%s", done.held, shown, more)
    return done


def release_no_shows(
    engine: Engine,
    publisher: AclPublisher | None,
    now: datetime | None = None,
    sends_mail: bool = False,
    settle: timedelta = SETTLE,
) -> Sweep:
    """Release the bookings due (see the module); ``sends_mail``: tell their members and
    the members who get the desks by mail."""
    now = now or datetime.now(UTC)
    done = Sweep()
    with engine.connect() as conn:
        due = _due(conn, now, settle)
        ready, doorless = _doors(conn, {row.site_id for row in due}, now, settle)
        hearing = listening(conn, now - settle, now) if due else None
    if hearing is not None and not hearing.listening:
        ready, done.unheard = set(), hearing.why_not  # the doors' taps may not be in
    held: set[str] = set()
    freed: list[Freed] = []
    try:
        for row in due:
            if row.site_id in doorless:
                done.doorless += 1
            elif row.site_id not in ready:
                done.held += 1
                held.add(row.site_id)
            else:
                with writing(engine), engine.begin() as conn:
                    one = free(conn, row, Ending.RELEASED, now, sends_mail)
                if one.changed:
                    freed.append(one)
    finally:  # what was committed reaches the doors, whatever stopped the rest
        tell_doors(publisher, freed)
    done.released = [one.booking.id for one in freed]
    done.given = [booking.id for one in freed for booking in one.given]
    done.held_sites = sorted(held)
    return done


def _due(conn: Connection, now: datetime, settle: timedelta) -> list[Row]:
    """Bookings that still hold, not arrived at, not ended, whose start (and making) plus
    their site's grace time and ``settle`` has passed; the earliest first."""
    s, b = db.sites.c, db.bookings.c
    graces: dict[int, list[str]] = defaultdict(list)
    for site, grace in conn.execute(select(s.id, s.grace_minutes)):
        graces[grace].append(site)
    if not graces:
        return []
    # Per grace time (a network has a few), its sites' bookings due: start and making both
    # before the cut-off (a booking made after its start has its grace from then).
    due = []
    for grace, sites in graces.items():
        cutoff = now - settle - timedelta(minutes=grace)
        due.append(and_(b.site_id.in_(sites), b.starts_at <= cutoff, b.created_at <= cutoff))
    # A booking lies within its site's day, so one that has begun and not ended is of
    # yesterday, today or tomorrow in UTC's terms: the (site, day) index narrows the scan.
    days = (b.day >= (now - timedelta(days=1)).date(), b.day <= (now + timedelta(days=1)).date())
    query = (
        select(db.bookings)
        .where(*days, holding(), b.arrived_at.is_(None), b.ends_at > now, or_(*due))
        .order_by(b.starts_at, b.id)
        .limit(BATCH)
    )
    return list(conn.execute(query).all())


def _doors(
    conn: Connection, sites: set[str], now: datetime, settle: timedelta
) -> tuple[set[str], set[str]]:
    """Of ``sites``: those whose every door is online and settled, and those with no door."""
    if not sites:
        return set(), set()
    d, st = db.devices.c, db.device_states.c
    rows = conn.execute(
        select(d.site, st.online, st.received_at)
        .select_from(
            db.devices.outerjoin(db.device_states, (st.site == d.site) & (st.device == d.id))
        )
        .where(d.site.in_(sorted(sites)), d.kind == "door", d.revoked_at.is_(None))
    ).all()
    with_doors: set[str] = set()
    unready: set[str] = set()
    for row in rows:
        with_doors.add(row.site)
        heard = db.aware(row.received_at)
        if row.online is not True or heard is None or heard > now - settle:
            unready.add(row.site)
    return with_doors - unready, sites - with_doors


def offer_free_desks(
    engine: Engine, publisher: AclPublisher | None, now: datetime, sends_mail: bool
) -> list[int]:
    """Give desks that are free at site-days members wait for to them: desks that freed
    while every waiting member's row was busy, or that a site added. Only a site-day with a
    desk free for a part waited for is locked and offered. Returns the bookings made."""
    with engine.connect() as conn:
        waited = waiting_days(conn)
        desks = {row.id: row.desks for row in conn.execute(select(db.sites.c.id, db.sites.c.desks))}
        by_day: dict[date, list[str]] = defaultdict(list)
        for site, day in waited:
            by_day[day].append(site)
        free: list[WaitingDay] = []
        for day, sites in by_day.items():
            taken = desks_taken(conn, sites, day)
            free += [
                WaitingDay(site, day)
                for site in sites
                if fits(desks.get(site), taken.get(site, Taken()), waited[WaitingDay(site, day)])
            ]
    given: list[Row] = []
    try:
        for site, day in free:
            with writing(engine), engine.begin() as conn:
                lock_pool(conn, site, day, DESKS)
                made = offer_desks(conn, site, day, now, sends_mail)
            given += made
    finally:
        tell_members(publisher, given)
    return [booking.id for booking in given]
