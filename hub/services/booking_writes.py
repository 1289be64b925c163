"""The writes every booking, cancellation, release and waiting-list desk share: the pool's
lock, the member's lock, and the insert of a booking with the grant that lets its member in.

Never more desks or room seats than there are, under any concurrency (the pattern of pretix's
quotas): the transaction that inserts, cancels or releases a booking first writes its pool's
row in ``booking_pools`` (site, local day, ``desks`` or ``room:<id>``), then counts, then
writes. The write takes PostgreSQL's row lock, which a second transaction of the pool waits
for until the first commits; at READ COMMITTED the count after it sees the first one's row. On
SQLite the write takes the database's write lock. The driver (pysqlite, Python's default
transaction handling) opens the transaction with a plain ``BEGIN`` just before the first
write, and reads before it run outside any transaction: with the pool's write as the
transaction's first statement, the lock is taken before anything is read, so no read lock is
ever upgraded (the SQLITE_BUSY a deferred ``BEGIN`` risks) and no ``BEGIN IMMEDIATE`` is
needed; a waiting writer waits out the store's busy timeout (10 s).

A booking that counts days of the member's allowance first locks the member's row
(PostgreSQL), so that two bookings at two sites cannot both take the month's last day. The
order is always member, then pool, then booking rows; a transaction that holds a pool
already (a freed desk offered to the waiting list) takes a member's lock only if it is free
(``SKIP LOCKED``), so the two orders never wait on each other.

A booking also counts against the site's settings (hours, closed days, zone, desks) and its
room's seats as they are when it commits: it reads both rows under the pool's lock, for share
(``lock_pool_with_settings``), and a change of them writes the site's row first
(``lock_site``), then the room's, then the pools of the bookings it cancels. So a booking
cannot slip in between a change's check of the bookings and the change, nor count against
settings the change has just replaced. On PostgreSQL the order is site, room, pool for both
(a booking reads the rows before it writes its pool); on SQLite the first write takes the
database's lock, and what is read after it is what is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from types import ModuleType

from sqlalchemy import Connection, Engine, Executable, Row, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hub import db
from hub.services.booking_counts import Hold

#: The pool of a site's desks (a room's is ``room:<id>``).
DESKS = "desks"


def resource_of(booking: Row) -> str:
    """The pool a stored booking counts against."""
    return f"room:{booking.room_id}" if booking.kind == "room" else DESKS


def _pool_write(dialect: ModuleType) -> Executable:
    table = db.booking_pools
    statement = dialect.insert(table).values(
        site_id=bindparam("site"), day=bindparam("day"), resource=bindparam("resource"), changes=1
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.site_id, table.c.day, table.c.resource],
        set_={"changes": table.c.changes + 1},
    )


#: Built once per dialect (booking's hot path): insert the pool's row, or bump ``changes``.
_POOL_WRITE = {"postgresql": _pool_write(postgresql), "sqlite": _pool_write(sqlite)}
_INSERT_BOOKING = insert(db.bookings).returning(*db.bookings.c)
_INSERT_GRANT = insert(db.grants)


def lock_pool(conn: Connection, site: str, day: date, resource: str) -> None:
    """Write the pool's row (insert, or bump ``changes``): the lock every booking,
    cancellation and release of the pool takes before it counts (see the module's words)."""
    pool = {"site": site, "day": day, "resource": resource}
    conn.execute(_POOL_WRITE[conn.dialect.name], pool)


_s, _r = db.sites.c, db.rooms.c
#: Built once (booking's hot path): the site's and the room's rows, for share.
_SITE_NOW = select(db.sites).where(_s.id == bindparam("site")).with_for_update(read=True)
_SEATS_NOW = (
    select(_r.seats)
    .where(_r.site_id == bindparam("site"), _r.id == bindparam("room"))
    .with_for_update(read=True)
)


@dataclass(frozen=True)
class Settings:
    """A site's settings and its room's seats as a booking counts against them."""

    site: Row | None  # None: no such site
    seats: int | None  # None: no room booked, or no such room (any more)


def lock_pool_with_settings(
    conn: Connection, site: str, day: date, resource: str, room: str | None = None
) -> Settings:
    """Take the pool's lock (``lock_pool``) and read the site's row and ``room``'s seats
    under it, for share: the settings the booking counts against (see the module)."""
    postgres = conn.dialect.name == "postgresql"
    settings = _settings(conn, site, room) if postgres else None
    lock_pool(conn, site, day, resource)
    return settings or _settings(conn, site, room)


def _settings(conn: Connection, site: str, room: str | None) -> Settings:
    row = conn.execute(_SITE_NOW, {"site": site}).one_or_none()
    seats = None if room is None else conn.scalar(_SEATS_NOW, {"site": site, "room": room})
    return Settings(row, seats)


def lock_site(conn: Connection, site: str) -> bool:
    """Write the site's row (to what it holds): the first statement of a change of its
    settings or rooms, so bookings of the site wait for the change and the change for
    bookings under way (see the module). Returns whether the site exists."""
    touch = update(db.sites).where(_s.id == site).values(timezone=_s.timezone)
    return conn.execute(touch).rowcount > 0


def writing(engine: Engine) -> AbstractContextManager[object]:
    """Around every booking transaction: on SQLite, one writer of this process at a time,
    queued without SQLite's polling (``hub.db.one_writer``)."""
    return db.one_writer(engine)


def lock_member(conn: Connection, member: str, wait: bool = True) -> bool:
    """Lock the member's row until commit (PostgreSQL; SQLite's first write locks it all).
    ``wait`` False: only if nobody holds it (``SKIP LOCKED``); returns whether it is held."""
    if conn.dialect.name != "postgresql":
        return True
    query = select(db.members.c.id).where(db.members.c.id == member)
    return conn.scalar(query.with_for_update(skip_locked=not wait)) is not None


def insert_booking(
    conn: Connection,
    member: str,
    site: str,
    kind: str,
    hold: Hold,
    booked_by: int | None,
    now: datetime,
    room: str | None = None,
    attendees: int | None = None,
    company: str | None = None,
) -> Row:
    """Insert the booking and the grant that lets its member in at ``site`` for its time
    (the door hears of it once the caller has committed and published); the pool's lock and
    the counting rules (``booking_counts.require_free``) come first, in the same transaction.
    ``company``: the employer whose allowance it is made within. Returns the stored booking."""
    booking = {
        "member_id": member,
        "site_id": site,
        "kind": kind,
        "starts_at": hold.window.starts_at,
        "ends_at": hold.window.ends_at,
        "created_at": now,
        "day": hold.window.day,
        "part": hold.part,
        "room_id": room,
        "attendees": (attendees or 1) if kind == "room" else None,
        "booked_by": booked_by,
        "company_id": company,
    }
    row = conn.execute(_INSERT_BOOKING, booking).one()
    grant = {
        "member_id": member,
        "source": "booking",
        "booking_id": row.id,
        "sites": [site],
        "valid_from": hold.window.starts_at,
        "valid_until": hold.window.ends_at,
    }
    conn.execute(_INSERT_GRANT, grant)
    return row
