"""Making and cancelling bookings: a booking lets its member in at one site for its time only,
as their entry in that site's access list (sent as a delta once the booking is stored, so the
door knows it also while the site is offline later); cancelling takes it back.

Who books for whom: a member for themselves; a company admin for their company's staff;
network admins for anyone anywhere and operators at their sites (day guests, desks, rooms).
Members and company admins book within the member's allowance (``allowance``); the staff
beyond it. Every booking passes the rules of ``booking_rules``.

Never more desks or room seats than there are, under any concurrency: the pool's lock, taken
first in the transaction that counts and inserts (``booking_writes``). A cancellation frees
its place through ``freeing``, which gives it to the first member on the waiting list whose
part fits, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, Row, select

from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal, Role
from hub.services import booking_mail
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
from hub.services.booking_rules import (
    Rule,
    SiteRules,
    blocked,
    desk_window,
    refuse,
    timed_window,
)
from hub.services.booking_writes import (
    DESKS,
    Settings,
    insert_booking,
    lock_member,
    lock_pool_with_settings,
    writing as _writing,
)
from hub.services.desk_pool import Part
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from hub.services.freeing import Ending, free, tell_doors
from hub.services.publishing import publish_member
from hub.services.scope import Scope
from hub.services.wording import N_, Words


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


# Each way to book takes ``confirm``: the hub's host name when it sends mail (the member
# gets a confirmation with the booking's .ics, whose UID names the hub), None when it does not.


def book(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    site: str,
    wanted: BookingIn,
    confirm: str | None = None,
) -> Booking:
    """Book for any member at ``site``: network admins anywhere, operators at their sites;
    beyond the member's allowance, within every other rule."""
    Scope(who).require_people_at(site)
    return _book(engine, publisher, who, site, wanted.member, wanted, None, confirm)


def book_for_self(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    wanted: MyBookingIn,
    confirm: str | None = None,
) -> Booking:
    """A member books a desk or a room for themselves, within their allowance."""
    return _book(engine, publisher, who, wanted.site, own_member(who), wanted, "you", confirm)


def book_for_staff(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    wanted: StaffBookingIn,
    confirm: str | None = None,
) -> Booking:
    """A company admin books for one of their company's staff, within its allowance; anyone
    else answers as a member that does not exist."""
    company = own_company(who)
    with engine.connect() as conn:
        if not on_staff(conn, company, wanted.member):
            raise NotFound(f"no member {wanted.member!r} on your company's staff")
    member = wanted.member
    return _book(engine, publisher, who, wanted.site, member, wanted, member, confirm)


def _book(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    site: str,
    member: str,
    wanted: Wanted,
    subject: str | None,
    confirm: str | None,
) -> Booking:
    """Book under every rule; ``subject`` None: the staff book (no allowance), else how the
    messages name the member ("you", or their id for a company admin). The confirmation
    mail is queued in the booking's transaction: made, it is sent; refused, it never was."""
    now = datetime.now(UTC)
    # What does not change under a booking is read first, outside the locking transaction.
    with engine.connect() as conn:
        rules = SiteRules.load(conn, site)
        hold = _what_it_holds(conn, rules, wanted, now)
        terms = member_terms(conn, member)
        if terms is None:
            raise Invalid(f"no member {member!r}")
        if terms.blocked:
            raise blocked(member, subject)
        allowance = None
        if subject is not None:
            allowance = allowance_of(conn, member, terms, hold.window.starts_at)
            allowance.require_site(site)
    with _writing(engine), engine.begin() as conn:
        if allowance is not None and allowance.days_per_month is not None:
            lock_member(conn, member)
        room = wanted.room if hold.room is not None else None
        settings = lock_pool_with_settings(conn, site, hold.window.day, hold.resource, room)
        # The settings as they are now, not as read before the lock: a change of the site or
        # the room made meanwhile counted the bookings it could see, so this one counts
        # against its result (``booking_writes``).
        rules, hold = _as_settings_are(conn, settings, rules, hold, wanted, now)
        require_free(conn, rules, member, hold, allowance, subject or member, now)
        row = insert_booking(
            conn,
            member,
            site,
            wanted.kind,
            hold,
            who.user_id,
            now,
            room=wanted.room,
            attendees=wanted.attendees,
            company=allowance.company if allowance is not None else None,
        )
        if confirm is not None:
            booking_mail.confirm(conn, row, confirm)
    publish_member(publisher, member, {site})
    return as_booking(row)


def _as_settings_are(
    conn: Connection,
    settings: Settings,
    rules: SiteRules,
    hold: Hold,
    wanted: Wanted,
    now: datetime,
) -> tuple[SiteRules, Hold]:
    """The rules and the hold under the pool's lock: asked again if a change of the site's
    hours, days or zone, or of the room, came in between (its desks count as they are)."""
    if settings.site is None:
        raise NotFound(f"no site {rules.id!r}")
    fresh = SiteRules.of(settings.site)
    room_changed = hold.room is not None and settings.seats != hold.room.seats
    if not room_changed and replace(rules, desks=fresh.desks) == fresh:
        return fresh, hold
    again = _what_it_holds(conn, fresh, wanted, now)
    if (again.window.day, again.resource) != (hold.window.day, hold.resource):
        raise Conflict(f"{rules.id}'s settings changed while you booked: try again")
    return fresh, again


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
        names = ", ".join(x.id for x in rooms) or Words(N_("none"))
        raise refuse(
            Rule.NO_ROOM,
            N_("%(site)s has no room '%(room)s'; its rooms: %(rooms)s"),
            site=rules.id,
            room=wanted.room or "",
            rooms=names,
        )
    window = timed_window(rules, wanted.starts_at, wanted.ends_at, now, True)
    attendees = wanted.attendees or 1
    if attendees > room.seats:
        bigger = ", ".join(f"{x.id} ({x.seats})" for x in rooms if x.seats >= attendees)
        text = N_("%(room)s at %(site)s seats %(seats)s: %(people)s do not fit")
        if bigger:
            text = N_(
                "%(room)s at %(site)s seats %(seats)s: %(people)s do not fit; rooms that seat"
                " %(people)s: %(bigger)s"
            )
        raise refuse(
            Rule.TOO_MANY_PEOPLE,
            text,
            room=room.id,
            site=rules.id,
            seats=room.seats,
            people=attendees,
            bigger=bigger,
        )
    return Hold(window, f"room:{room.id}", room=room)


# -- cancelling -----------------------------------------------------------------------------


class Canceller(StrEnum):
    """As whom a booking is cancelled: which bookings one may cancel, and until when."""

    #: Network admins and operators: any booking at a site they see people of, at any time.
    STAFF = "staff"
    #: A member: their own, until the site's cut-off.
    MEMBER = "member"
    #: A company admin: one their company's allowance paid for, until the site's cut-off.
    EMPLOYER = "employer"


def cancel(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    booking_id: int,
    *,
    by: Canceller = Canceller.STAFF,
    sends_mail: bool = False,
    now: datetime | None = None,
) -> Booking:
    """Cancel a booking ``who`` may cancel ``by`` their part (``Canceller``); any other
    answers as one that does not exist: the answer never tells where one lives or whose it
    is. Marks it cancelled (it is kept, for the operator's day view), deletes its grant,
    gives its desk to the waiting list (``freeing``), tells the doors. Cancelling a booking
    that no longer holds (cancelled or released) changes nothing. ``sends_mail``: the hub
    sends mail (a member who gets the desk is told)."""
    may_cancel = _may_cancel(who, by)
    now = now or datetime.now(UTC)
    b = db.bookings.c
    with engine.connect() as conn:
        row = conn.execute(select(db.bookings).where(b.id == booking_id)).one_or_none()
        if row is None or not may_cancel(row):
            raise NotFound("no such booking")
        if row.cancelled_at is not None or row.released_at is not None:
            return as_booking(row)
        if by != Canceller.STAFF:
            _require_before_cut_off(conn, row, now)
    with _writing(engine), engine.begin() as conn:
        freed = free(conn, row, Ending.CANCELLED, now, sends_mail)
    tell_doors(publisher, [freed])
    return as_booking(freed.booking)


def _may_cancel(who: Principal, by: Canceller) -> Callable[[Row], bool]:
    """Which bookings ``who`` may cancel as ``by``; refused outright for the wrong role."""
    if by == Canceller.MEMBER:
        member = own_member(who)
        return lambda row: bool(row.member_id == member)
    if by == Canceller.EMPLOYER:
        company = own_company(who)
        return lambda row: bool(row.company_id == company)
    scope = Scope(who)
    scope.require_people()
    return lambda row: scope.may_see(row.site_id)


def _require_before_cut_off(conn: Connection, row: Row, now: datetime) -> None:
    """Refuse a cancellation after the site's cut-off before the booking starts."""
    rules = SiteRules.load(conn, row.site_id)
    deadline = db.aware(row.starts_at) - timedelta(minutes=rules.cancel_minutes)
    if now > deadline:
        until = deadline.astimezone(rules.zone)
        raise refuse(
            Rule.CANCEL_TOO_LATE,
            N_(
                "a booking at %(site)s can be cancelled until %(minutes)s minutes before"
                " it starts (%(until)s); ask the space's operator"
            ),
            site=rules.id,
            minutes=rules.cancel_minutes,
            until=f"{until:%Y-%m-%d %H:%M}",
        )
