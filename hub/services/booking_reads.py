"""Reading bookings back, each role its own: the staff one booking at a site they see and a
site's day guests; a member their own bookings (upcoming or past); a company admin the
bookings its allowance paid for, by month (which days, where; never when anyone came in, and
never what its staff booked on their own: ``bookings.company_id``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Row, select

from hub import db
from hub.auth import Principal
from hub.services.allowance import month_of
from hub.services.booking_models import Booking, as_booking
from hub.services.bookings import own_company, own_member
from hub.services.desk_pool import holding
from hub.services.errors import Invalid, NotFound
from hub.services.members import own_members
from hub.services.scope import Scope
from hub.services.sites import site_zone

#: The most bookings one answer lists.
MAX_LIST = 500


class When(StrEnum):
    #: Not over yet, soonest first.
    UPCOMING = "upcoming"
    #: Over, latest first.
    PAST = "past"


class DayGuest(BaseModel):
    booking: int
    member: str
    name: str | None
    kind: str
    starts_at: datetime
    ends_at: datetime
    cancelled: bool
    #: Given back: nobody tapped in by its start plus the site's grace time.
    released: bool = False


def get_booking(engine: Engine, who: Principal, booking_id: int) -> Booking:
    """One booking, for the staff; another site's answers as one that does not exist."""
    scope = Scope(who)
    scope.require_people()
    row = _row(engine, booking_id)
    if row is None or not scope.may_see(row.site_id):
        raise NotFound("no such booking")
    return as_booking(row)


def get_own_booking(engine: Engine, who: Principal, booking_id: int) -> Booking:
    """One of the member's own bookings; anyone else's answers as one that does not exist."""
    member = own_member(who)
    row = _row(engine, booking_id)
    if row is None or row.member_id != member:
        raise NotFound("no such booking")
    return as_booking(row)


def _row(engine: Engine, booking_id: int) -> Row | None:
    with engine.connect() as conn:
        return conn.execute(select(db.bookings).where(db.bookings.c.id == booking_id)).one_or_none()


def own_bookings(
    engine: Engine,
    who: Principal,
    when: When = When.UPCOMING,
    cancelled: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Booking]:
    """The member's bookings: those not over yet (soonest first) or those over (latest
    first), released ones too (``state`` released: the member should see what happened to
    them); cancelled ones only if asked."""
    member = own_member(who)
    b = db.bookings.c
    now = datetime.now(UTC)
    query = select(db.bookings).where(b.member_id == member)
    if when == When.UPCOMING:
        query = query.where(b.ends_at > now).order_by(b.starts_at, b.id)
    else:
        query = query.where(b.ends_at <= now).order_by(b.starts_at.desc(), b.id.desc())
    if not cancelled:
        query = query.where(b.cancelled_at.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(query.limit(min(limit, MAX_LIST)).offset(offset)).all()
    return [as_booking(r) for r in rows]


def staff_bookings(
    engine: Engine, who: Principal, month: str, limit: int = MAX_LIST, offset: int = 0
) -> list[Booking]:
    """The bookings the company admin's company paid for whose site's day falls in
    ``month`` (``YYYY-MM``), cancelled ones too, by day: also those of people who have left
    its staff since, never their own. The booked times are shown, never taps."""
    company = own_company(who)
    first, following = month_of(_first_of(month))
    b = db.bookings.c
    query = (
        select(db.bookings)
        .where(b.company_id == company, b.day >= first, b.day < following)
        .order_by(b.day, b.member_id, b.starts_at, b.id)
        .limit(min(limit, MAX_LIST))
        .offset(offset)
    )
    now = datetime.now(UTC)
    with engine.connect() as conn:
        return [_as_employer_sees(r, now) for r in conn.execute(query)]


def get_staff_booking(engine: Engine, who: Principal, booking_id: int) -> Booking:
    """One booking the company admin's company paid for; any other answers as none."""
    company = own_company(who)
    row = _row(engine, booking_id)
    if row is None or row.company_id != company:
        raise NotFound("no such booking")
    return _as_employer_sees(row, datetime.now(UTC))


def _as_employer_sees(row: Row, now: datetime) -> Booking:
    """A booking as its company's admin may see it: until it is over, booked (or
    cancelled), never arrived or released, which change the minute a card opens the door
    (or by then had not) and so would tell, to an admin asking every minute, when someone
    came in; once it is over, whether it was used (as staff_bookings' pages show it)."""
    booking = as_booking(row)
    if booking.ends_at <= now or booking.cancelled:
        return booking
    return booking.model_copy(update={"state": "booked", "released": False, "released_at": None})


def _first_of(month: str) -> date:
    try:
        return date.fromisoformat(f"{month}-01")
    except ValueError:
        raise Invalid(f"month: {month!r} is not a month written YYYY-MM") from None


def day_span(
    conn: Connection, who: Principal, site: str, day: date | None
) -> tuple[datetime, datetime]:
    """The site's [start, end) of ``day`` (default: its today) in UTC; the checks of
    ``site_zone`` first."""
    tz = site_zone(conn, who, site)
    day = day or datetime.now(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def day_guests(
    engine: Engine, who: Principal, site: str, day: date | None = None, cancelled: bool = False
) -> list[DayGuest]:
    """The bookings that overlap a day at the site (cancelled and released ones too, if
    asked); a guest who is another site's member is shown to an operator by id alone
    (``own_members``)."""
    b = db.bookings.c
    with engine.connect() as conn:
        start, end = day_span(conn, who, site, day)
        query = (
            select(db.bookings, db.members.c.name)
            .outerjoin(db.members, db.members.c.id == b.member_id)
            .where(b.site_id == site, b.starts_at < end, b.ends_at > start)
            .order_by(b.starts_at, b.id)
        )
        if not cancelled:
            query = query.where(holding())
        rows = conn.execute(query).all()
        named = own_members(conn, Scope(who), {r.member_id for r in rows})
    return [
        DayGuest(
            booking=r.id,
            member=r.member_id,
            name=r.name if r.member_id in named else None,
            kind=r.kind,
            starts_at=db.aware(r.starts_at),
            ends_at=db.aware(r.ends_at),
            cancelled=r.cancelled_at is not None,
            released=r.released_at is not None,
        )
        for r in rows
    ]
