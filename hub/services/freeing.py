"""The one way a booking stops holding its desk or room: cancelled (by its member, their
employer or the staff, or when a company takes someone off its staff) or released (nobody
tapped in by its start plus the site's grace time: ``no_shows``).

In the caller's transaction, as its first write: the pool's row is written (the lock of
``booking_writes``), the booking marked, its grant deleted, the member told of a release by
mail, and a freed desk given to the waiting list (``waiting_offers``). After the commit the
caller tells the doors (``tell_doors``): the member's entry goes, the new booking's member's
comes. A booking that no longer holds (cancelled, released, or arrived at for a release) is
left as it is: freeing twice changes nothing, however many processes try.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Connection, Row, delete, select, update

from hub import db
from hub.access_lists import AclPublisher
from hub.services.booking_mail import Because, tell_cancelled, tell_member
from hub.services.booking_writes import lock_pool, resource_of
from hub.services.desk_pool import DESK_KINDS, holding
from hub.services.publishing import publish_member
from hub.services.waiting_offers import offer_desks


class Ending(StrEnum):
    CANCELLED = "cancelled"
    RELEASED = "released"


@dataclass(frozen=True)
class Freed:
    """What freeing one booking did."""

    #: The booking as stored now.
    booking: Row
    #: False: it held nothing any more (or, for a release, its member had arrived).
    changed: bool
    #: The bookings made from the waiting list with the place it freed.
    given: tuple[Row, ...] = ()


def free(conn: Connection, booking: Row, ending: Ending, now: datetime, sends_mail: bool) -> Freed:
    """Cancel or release ``booking`` (a ``db.bookings`` row read before the transaction) in
    the caller's transaction, whose first write this must be (see the module).

    A release also asks that the member has not arrived and the booking has not ended, and on
    PostgreSQL claims the booking's row with ``SKIP LOCKED``: a row another transaction holds
    is being marked arrived by ingest (or freed by another): it is left for the next sweep."""
    b = db.bookings.c
    if booking.day is not None:
        lock_pool(conn, booking.site_id, booking.day, resource_of(booking))
    still = [b.id == booking.id, holding()]
    if ending == Ending.RELEASED:
        still += [b.arrived_at.is_(None), b.ends_at > now]
        if conn.dialect.name == "postgresql":
            claim = select(b.id).where(*still).with_for_update(skip_locked=True)
            if conn.scalar(claim) is None:
                return Freed(_row(conn, booking.id), False)
    column = "cancelled_at" if ending == Ending.CANCELLED else "released_at"
    changed = conn.execute(update(db.bookings).where(*still).values({column: now})).rowcount > 0
    row = _row(conn, booking.id)
    if not changed:
        return Freed(row, False)
    conn.execute(delete(db.grants).where(db.grants.c.booking_id == booking.id))
    if ending == Ending.RELEASED and sends_mail:
        tell_member(conn, row, True)
    given: list[Row] = []
    if row.kind in DESK_KINDS and row.day is not None:
        given = offer_desks(conn, row.site_id, row.day, now, sends_mail)
    return Freed(row, True, tuple(given))


def cancel_all(
    conn: Connection,
    bookings: Iterable[Row],
    now: datetime,
    sends_mail: bool,
    because: Because,
) -> list[Freed]:
    """Cancel ``bookings`` for someone other than their members (an employer, a change of
    the site), in the caller's transaction: each as ``free`` does, and each member whose
    booking this cancelled is told ``because`` by mail (``sends_mail``). The pools are taken
    in one order (site, day, pool), whatever order ``bookings`` come in: two transactions
    that cancel several never wait for each other's pools crosswise (on PostgreSQL one of
    them would end as a deadlock)."""
    freed = []
    for row in sorted(bookings, key=_pool_order):
        one = free(conn, row, Ending.CANCELLED, now, sends_mail)
        if one.changed and sends_mail:
            tell_cancelled(conn, one.booking, because)
        freed.append(one)
    return freed


def _pool_order(booking: Row) -> tuple[str, date, str, int]:
    return booking.site_id, booking.day or date.min, resource_of(booking), booking.id


def _row(conn: Connection, booking_id: int) -> Row:
    return conn.execute(select(db.bookings).where(db.bookings.c.id == booking_id)).one()


def tell_doors(publisher: AclPublisher | None, freed: Iterable[Freed]) -> None:
    """After the commit: each member whose bookings changed gets their new entry at the
    sites concerned (one delta per member and site set)."""
    changed: list[Row] = []
    for one in freed:
        if one.changed:
            changed.append(one.booking)
        changed += one.given
    tell_members(publisher, changed)


def tell_members(publisher: AclPublisher | None, bookings: Iterable[Row]) -> None:
    """After the commit: the members of ``bookings`` (made or ended) get their new entry at
    those bookings' sites."""
    sites: dict[str, set[str]] = defaultdict(set)
    for booking in bookings:
        sites[booking.member_id].add(booking.site_id)
    for member, where in sites.items():
        publish_member(publisher, member, where)
