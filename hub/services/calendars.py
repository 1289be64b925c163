"""Bookings in the member's own calendar: an ``.ics`` for each booking, and a private feed
URL per member that calendar apps poll (revocable: a new URL ends the old one).

Feeds that go stale are what members of other booking tools complain about, so the feed says
how often to poll (``REFRESH-INTERVAL``, an hour) and keeps a cancelled or released booking in
it, marked cancelled, for ``KEEP_ENDED`` after it was due: a calendar that saw it drops it
instead of showing a desk the member no longer has. Each event has the booking's id in its
``UID`` and a ``SEQUENCE`` that grows with each change, so re-imports update, never duplicate.

The feed's secret is the token in its URL; only its SHA-256 is stored (as for API tokens).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vGeo
from sqlalchemy import Connection, Engine, Row, delete, insert, select

from hub import db
from hub.services.errors import NotFound

#: How far back the feed reaches: recent visits stay in the calendar, old ones drop out.
FEED_PAST = timedelta(days=90)
#: The most events one feed holds (a feed is fetched by every device of the member, hourly).
FEED_MAX_EVENTS = 1000
#: How often calendar apps are asked to fetch the feed again.
REFRESH = timedelta(hours=1)
#: How long a cancelled or released booking stays in the feed, marked cancelled.
KEEP_ENDED = timedelta(days=14)
PRODID = "-//hafen//bookings//EN"
FEED_PREFIX = "hfc_"


def booking_ics(engine: Engine, member: str, booking_id: int, host: str) -> bytes:
    """One of ``member``'s bookings as an iCalendar file; another's answers as none at all."""
    with engine.connect() as conn:
        rows = _rows(conn, member, booking_id=booking_id)
    if not rows:
        raise NotFound("no such booking")
    return _calendar(rows, host, name=None).to_ical()


def booking_ics_text(conn: Connection, member: str, booking_id: int, host: str) -> str | None:
    """The same file as text, read in the caller's transaction (for the confirmation mail,
    written with the booking); None if there is no such booking of ``member``."""
    rows = _rows(conn, member, booking_id=booking_id)
    return _calendar(rows, host, name=None).to_ical().decode() if rows else None


def new_feed(engine: Engine, member: str) -> str:
    """A new secret feed token for ``member``; the old one (if any) stops working at once."""
    token = FEED_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(delete(db.calendar_feeds).where(db.calendar_feeds.c.member_id == member))
        conn.execute(
            insert(db.calendar_feeds).values(
                member_id=member, token_hash=_digest(token), created_at=datetime.now(UTC)
            )
        )
    return token


def drop_feed(engine: Engine, member: str) -> bool:
    """End ``member``'s feed; False if they had none."""
    with engine.begin() as conn:
        gone = conn.execute(
            delete(db.calendar_feeds).where(db.calendar_feeds.c.member_id == member)
        )
    return bool(gone.rowcount)


def has_feed(engine: Engine, member: str) -> bool:
    with engine.connect() as conn:
        f = db.calendar_feeds.c
        return conn.scalar(select(f.member_id).where(f.member_id == member)) is not None


def feed_ics(engine: Engine, token: str, host: str) -> bytes:
    """The feed behind a token: the member's bookings from ``FEED_PAST`` ago on. An unknown
    or revoked token answers as none at all."""
    if not token.startswith(FEED_PREFIX) or len(token) > 100:
        raise NotFound("no such calendar")
    f = db.calendar_feeds.c
    with engine.connect() as conn:
        member = conn.scalar(select(f.member_id).where(f.token_hash == _digest(token)))
        if member is None:
            raise NotFound("no such calendar")
        rows = _rows(conn, member, since=datetime.now(UTC) - FEED_PAST)
    return _calendar(rows, host, name="hafen").to_ical()


def _rows(
    conn: Connection, member: str, booking_id: int | None = None, since: datetime | None = None
) -> Sequence[Row]:
    b, s, r = db.bookings.c, db.sites.c, db.rooms.c
    query = (
        select(
            db.bookings,
            s.name.label("site_name"),
            s.address,
            s.latitude,
            s.longitude,
            r.name.label("room_name"),
        )
        .join(db.sites, s.id == b.site_id)
        .outerjoin(db.rooms, (r.site_id == b.site_id) & (r.id == b.room_id))
        .where(b.member_id == member)
        .order_by(b.starts_at.desc(), b.id.desc())
        .limit(FEED_MAX_EVENTS)
    )
    if booking_id is not None:
        query = query.where(b.id == booking_id)
    if since is not None:
        query = query.where(b.ends_at >= since)
    rows = conn.execute(query).all()
    if since is None:
        return rows
    kept_since = datetime.now(UTC) - KEEP_ENDED
    return [row for row in rows if (ended := _ended(row)) is None or ended > kept_since]


def _ended(row: Row) -> datetime | None:
    """When the booking stopped holding its desk or room (cancelled or released), if it did."""
    return db.aware(row.cancelled_at or row.released_at)


def _calendar(rows: Sequence[Row], host: str, name: str | None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name is not None:
        cal.add("x-wr-calname", name)
        cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", REFRESH)
    for row in rows:
        cal.add_component(_event(row, host))
    return cal


def _event(row: Row, host: str) -> Event:
    ended = _ended(row)
    event = Event()
    event.add("uid", f"booking-{row.id}@{host}")
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", db.aware(row.starts_at))
    event.add("dtend", db.aware(row.ends_at))
    event.add("summary", _summary(row))
    place = ", ".join(p for p in (row.site_name or row.site_id, row.address) if p)
    event.add("location", place)
    if row.latitude is not None and row.longitude is not None:
        event.add("geo", vGeo((row.latitude, row.longitude)))
    # Each change (made, arrived, cancelled, released) makes the calendar replace the event.
    changes = [t for t in (row.created_at, row.cancelled_at, row.released_at) if t is not None]
    event.add("sequence", len(changes) - 1)
    event.add("last-modified", max(db.aware(t) for t in changes))
    event.add("status", "CANCELLED" if ended else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if row.released_at is not None:
        event.add("description", "Released: nobody tapped in by the end of the grace time.")
    return event


def _summary(row: Row) -> str:
    site = row.site_name or row.site_id
    if row.kind == "room":
        return f"{row.room_name or row.room_id} at {site}"
    part = {"morning": " (morning)", "afternoon": " (afternoon)"}.get(row.part or "", "")
    return f"Desk at {site}{part}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
