"""Making and cancelling bookings: a booking lets its member in at one site for its time only,
as their entry in that site's access list (sent as a delta once the booking is stored, so the
door knows it also while the site is offline later); cancelling takes it back.

Who books for whom: a member for themselves; a company admin for their company's staff;
network admins for anyone anywhere and operators at their sites (day guests, desks, rooms).
Members and company admins book within the member's allowance (``allowance``); the staff
beyond it. Every booking passes the rules of ``booking_rules``.

Never more desks or room seats than there are, under any concurrency (the pattern of pretix's
quotas): the transaction that inserts a booking first writes its pool's row in
``booking_pools`` (site, local day, ``desks`` or ``room:<id>``), then counts, then inserts.
The write takes PostgreSQL's row lock, which a second booking of the pool waits for until the
first commits; at READ COMMITTED the count after it sees the first one's row. On SQLite the
write takes the database's write lock. The driver (pysqlite, Python's default transaction
handling) opens the transaction with a plain ``BEGIN`` just before the first write, and reads
before it run outside any transaction: with the pool's write as the transaction's first
statement, the lock is taken before anything is read, so no read lock is ever upgraded (the
SQLITE_BUSY a deferred ``BEGIN`` risks) and no ``BEGIN IMMEDIATE`` is needed; a waiting
writer waits out the store's busy timeout (10 s). Cancellation writes the pool's row too.
A booking that counts days of the member's allowance first locks the member's row
(PostgreSQL), so that two bookings at two sites cannot both take the month's last day.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime, timedelta
from types import ModuleType

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Row,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal, Role
from hub.services.allowance import allowance_of, member_terms
from hub.services.booking_counts import Hold, require_free
from hub.services.booking_models import (
    Booking,
    BookingIn,
    MyBookingIn,
    StaffBookingIn,
    Wanted,
    as_booking,
)
from hub.services.booking_rules import Rule, SiteRules, desk_window, refuse, timed_window
from hub.services.desk_pool import Part
from hub.services.errors import Forbidden, Invalid, NotFound
from hub.services.publishing import publish_member
from hub.services.scope import Scope

DESKS = "desks"


def own_member(who: Principal) -> str:
    """The member a member (or a company admin who is one) books as; the staff book for
    members through their own rules (``book``), never as one."""
    Scope(who).require_role(Role.MEMBER, Role.COMPANY_ADMIN)
    if who.member_id is None:
        raise Forbidden("your account is not a member's")
    return who.member_id


def own_company(who: Principal) -> str:
    """The company a company admin looks after."""
    Scope(who).require_role(Role.COMPANY_ADMIN)
    if who.company_id is None:
        raise Forbidden("your account looks after no company")
    return who.company_id


def on_staff(conn: Connection, company: str, member: str) -> bool:
    """Whether ``member`` is on ``company``'s staff."""
    m = db.members.c
    return conn.scalar(select(m.id).where(m.id == member, m.company_id == company)) is not None


# -- booking --------------------------------------------------------------------------------


def book(
    engine: Engine, publisher: AclPublisher | None, who: Principal, site: str, wanted: BookingIn
) -> Booking:
    """Book for any member at ``site``: network admins anywhere, operators at their sites;
    beyond the member's allowance, within every other rule."""
    Scope(who).require_people_at(site)
    return _book(engine, publisher, who, site, wanted.member, wanted, None)


def book_for_self(
    engine: Engine, publisher: AclPublisher | None, who: Principal, wanted: MyBookingIn
) -> Booking:
    """A member books a desk or a room for themselves, within their allowance."""
    return _book(engine, publisher, who, wanted.site, own_member(who), wanted, "you")


def book_for_staff(
    engine: Engine, publisher: AclPublisher | None, who: Principal, wanted: StaffBookingIn
) -> Booking:
    """A company admin books for one of their company's staff, within its allowance; anyone
    else answers as a member that does not exist."""
    company = own_company(who)
    with engine.connect() as conn:
        if not on_staff(conn, company, wanted.member):
            raise NotFound(f"no member {wanted.member!r} on your company's staff")
    return _book(engine, publisher, who, wanted.site, wanted.member, wanted, wanted.member)


def _book(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    site: str,
    member: str,
    wanted: Wanted,
    subject: str | None,
) -> Booking:
    """Book under every rule; ``subject`` None: the staff book (no allowance), else how the
    messages name the member ("you", or their id for a company admin)."""
    now = datetime.now(UTC)
    # What does not change under a booking is read first, outside the locking transaction.
    with engine.connect() as conn:
        rules = SiteRules.load(conn, site)
        hold = _what_it_holds(conn, rules, wanted, now)
        terms = member_terms(conn, member)
        if terms is None:
            raise Invalid(f"no member {member!r}")
        if terms.blocked:
            who_is = "you are" if subject == "you" else f"{member} is"
            raise refuse(Rule.BLOCKED, f"{who_is} blocked; ask the network's management")
        allowance = None
        if subject is not None:
            allowance = allowance_of(conn, member, terms, hold.window.starts_at)
            allowance.require_site(site)
    with _writing(engine), engine.begin() as conn:
        if allowance is not None and allowance.days_per_month is not None:
            _lock_member(conn, member)
        lock_pool(conn, site, hold.window.day, hold.resource)
        require_free(conn, rules, member, hold, allowance, subject or member, now)
        booking = {
            "member_id": member,
            "site_id": site,
            "kind": wanted.kind,
            "starts_at": hold.window.starts_at,
            "ends_at": hold.window.ends_at,
            "created_at": now,
            "day": hold.window.day,
            "part": hold.part,
            "room_id": wanted.room,
            "attendees": (wanted.attendees or 1) if wanted.kind == "room" else None,
            "booked_by": who.user_id,
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
    publish_member(publisher, member, {site})
    return as_booking(row)


def _what_it_holds(conn: Connection, rules: SiteRules, wanted: Wanted, now: datetime) -> Hold:
    """The rules of what and when (``booking_rules``) for what is wanted."""
    if wanted.kind == "desk":
        assert wanted.day is not None  # the model's rule
        part = wanted.part or Part.DAY
        return Hold(desk_window(rules, wanted.day, part, now), DESKS, part)
    assert wanted.starts_at is not None and wanted.ends_at is not None  # the model's rule
    if wanted.kind == "day":
        return Hold(timed_window(rules, wanted.starts_at, wanted.ends_at, now, False), DESKS)
    r = db.rooms.c
    rooms = conn.execute(select(db.rooms).where(r.site_id == rules.id).order_by(r.id)).all()
    room = next((x for x in rooms if x.id == wanted.room), None)
    if room is None:
        names = ", ".join(x.id for x in rooms) or "none"
        raise refuse(Rule.NO_ROOM, f"{rules.id} has no room {wanted.room!r}; its rooms: {names}")
    window = timed_window(rules, wanted.starts_at, wanted.ends_at, now, True)
    attendees = wanted.attendees or 1
    if attendees > room.seats:
        bigger = ", ".join(f"{x.id} ({x.seats})" for x in rooms if x.seats >= attendees)
        instead = f"; rooms that seat {attendees}: {bigger}" if bigger else ""
        raise refuse(
            Rule.TOO_MANY_PEOPLE,
            f"{room.id} at {rules.id} seats {room.seats}: {attendees} do not fit{instead}",
        )
    return Hold(window, f"room:{room.id}", room=room)


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
    """Write the pool's row (insert, or bump ``changes``): the lock every booking and
    cancellation of the pool takes before it counts (see the module's words)."""
    pool = {"site": site, "day": day, "resource": resource}
    conn.execute(_POOL_WRITE[conn.dialect.name], pool)


#: This process's booking writers on SQLite, one at a time (see ``_writing``).
_SQLITE_WRITER = threading.Lock()


def _writing(engine: Engine) -> AbstractContextManager[object]:
    """On SQLite, this process's booking transactions queue on a lock of their own before
    they ask for the database's: SQLite's busy handler makes a waiting writer sleep and poll
    (up to 100 ms a time), so under a rush some waited over a second while the lock was
    free; queued here, each starts the moment the one before commits. Other processes
    (ingest) still meet at SQLite's lock. PostgreSQL needs none: its row locks queue."""
    return _SQLITE_WRITER if engine.dialect.name == "sqlite" else nullcontext()


def _lock_member(conn: Connection, member: str) -> None:
    """Lock the member's row until commit (PostgreSQL; SQLite's first write locks it all)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(db.members.c.id).where(db.members.c.id == member).with_for_update())


# -- cancelling -----------------------------------------------------------------------------


def cancel(
    engine: Engine, publisher: AclPublisher | None, who: Principal, booking_id: int
) -> Booking:
    """Cancel any booking at a site ``who`` sees people of, at any time. Another site's
    booking answers as one that does not exist: the answer never tells where one lives."""
    scope = Scope(who)
    scope.require_people()
    return _cancel(
        engine, publisher, booking_id, lambda _conn, row: scope.may_see(row.site_id), False
    )


def cancel_own(
    engine: Engine, publisher: AclPublisher | None, who: Principal, booking_id: int
) -> Booking:
    """A member cancels one of their bookings, until the site's cut-off; another's answers
    as one that does not exist."""
    member = own_member(who)
    return _cancel(engine, publisher, booking_id, lambda _conn, row: row.member_id == member, True)


def cancel_for_staff(
    engine: Engine, publisher: AclPublisher | None, who: Principal, booking_id: int
) -> Booking:
    """A company admin cancels a booking of their staff, until the site's cut-off."""
    company = own_company(who)
    return _cancel(
        engine,
        publisher,
        booking_id,
        lambda conn, row: on_staff(conn, company, row.member_id),
        True,
    )


def _cancel(
    engine: Engine,
    publisher: AclPublisher | None,
    booking_id: int,
    may_see: Callable[[Connection, Row], bool],
    cut_off: bool,
) -> Booking:
    """Mark the booking cancelled (it is kept, for the operator's day view), delete its
    grant, tell its site's doors. Cancelling a cancelled booking changes nothing."""
    now = datetime.now(UTC)
    b = db.bookings.c
    with engine.connect() as conn:
        row = conn.execute(select(db.bookings).where(b.id == booking_id)).one_or_none()
        if row is None or not may_see(conn, row):
            raise NotFound("no such booking")
        if row.cancelled_at is not None:
            return as_booking(row)
        if cut_off:
            rules = SiteRules.load(conn, row.site_id)
            deadline = db.aware(row.starts_at) - timedelta(minutes=rules.cancel_minutes)
            if now > deadline:
                until = deadline.astimezone(rules.zone)
                raise refuse(
                    Rule.CANCEL_TOO_LATE,
                    f"a booking at {rules.id} can be cancelled until {rules.cancel_minutes}"
                    f" minutes before it starts ({until:%Y-%m-%d %H:%M}); ask the space's"
                    " operator",
                )
    with _writing(engine), engine.begin() as conn:
        if row.day is not None:
            resource = f"room:{row.room_id}" if row.kind == "room" else DESKS
            lock_pool(conn, row.site_id, row.day, resource)
        changed = conn.execute(
            update(db.bookings)
            .where(b.id == booking_id, b.cancelled_at.is_(None))
            .values(cancelled_at=now)
        ).rowcount
        conn.execute(delete(db.grants).where(db.grants.c.booking_id == booking_id))
        row = conn.execute(select(db.bookings).where(b.id == booking_id)).one()
    if changed:
        publish_member(publisher, row.member_id, {row.site_id})
    return as_booking(row)
