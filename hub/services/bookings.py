"""Bookings: a desk or day booking lets a member in at one site for its time only; cancelling
takes it back. Each goes to the site's doors at once, as the member's entry in its list.

Network admins book anywhere, operators at their sites (day guests); technicians do not see
who comes, so they neither book nor read bookings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from hafen.ids import Slug
from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal
from hub.services.bounds import AwareInstant
from hub.services.errors import Invalid, NotFound
from hub.services.members import own_members
from hub.services.publishing import publish_member
from hub.services.scope import Scope
from hub.services.sites import require_site_exists, site_zone

MAX_BOOKING = timedelta(days=31)


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: Slug
    kind: Literal["desk", "day"] = "day"
    #: In UTC once read (bounds.AwareInstant): SQLite keeps only the wall-clock fields.
    starts_at: AwareInstant
    ends_at: AwareInstant

    @model_validator(mode="after")
    def _span(self) -> BookingIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_BOOKING:
            raise ValueError("a booking lasts at most 31 days; give the member a plan instead")
        return self


class Booking(BookingIn):
    id: int
    site: str
    cancelled: bool = False


class DayGuest(BaseModel):
    booking: int
    member: str
    name: str | None
    kind: str
    starts_at: datetime
    ends_at: datetime
    cancelled: bool


def book(
    engine: Engine, publisher: AclPublisher | None, who: Principal, site: str, booking: BookingIn
) -> Booking:
    """Book a desk or a day at ``site``: the member's grant for its time, sent to its doors."""
    Scope(who).require_people_at(site)
    with engine.begin() as conn:
        require_site_exists(conn, site)
        member = db.members.c.id == booking.member
        if conn.scalar(select(db.members.c.id).where(member)) is None:
            raise Invalid("no such member")
        booking_id = conn.execute(
            insert(db.bookings)
            .returning(db.bookings.c.id)
            .values(
                member_id=booking.member,
                site_id=site,
                kind=booking.kind,
                starts_at=booking.starts_at,
                ends_at=booking.ends_at,
                created_at=datetime.now(UTC),
            )
        ).scalar_one()
        conn.execute(
            insert(db.grants).values(
                member_id=booking.member,
                source="booking",
                booking_id=booking_id,
                sites=[site],
                valid_from=booking.starts_at,
                valid_until=booking.ends_at,
            )
        )
    publish_member(publisher, booking.member, {site})
    return Booking(id=booking_id, site=site, **booking.model_dump())


def cancel(
    engine: Engine, publisher: AclPublisher | None, who: Principal, booking_id: int
) -> Booking:
    """Cancel a booking: the access it gave is taken back at its site (the booking is kept,
    marked cancelled, for the operator's day view). Another site's booking answers as one
    that does not exist: the answer never tells where a booking lives."""
    scope = Scope(who)
    scope.require_people()
    with engine.begin() as conn:
        row = conn.execute(select(db.bookings).where(db.bookings.c.id == booking_id)).one_or_none()
        if row is None or not scope.may_see(row.site_id):
            raise NotFound("no such booking")
        conn.execute(
            update(db.bookings)
            .where(db.bookings.c.id == booking_id)
            .values(cancelled_at=datetime.now(UTC))
        )
        conn.execute(delete(db.grants).where(db.grants.c.booking_id == booking_id))
    publish_member(publisher, row.member_id, {row.site_id})
    return _booking(row, cancelled=True)


def get_booking(engine: Engine, who: Principal, booking_id: int) -> Booking:
    """One booking; another site's answers as one that does not exist (as ``cancel``)."""
    scope = Scope(who)
    scope.require_people()
    with engine.connect() as conn:
        row = conn.execute(select(db.bookings).where(db.bookings.c.id == booking_id)).one_or_none()
    if row is None or not scope.may_see(row.site_id):
        raise NotFound("no such booking")
    return _booking(row)


def _booking(row: Row, cancelled: bool | None = None) -> Booking:
    return Booking(
        id=row.id,
        site=row.site_id,
        member=row.member_id,
        kind=row.kind,
        starts_at=db.aware(row.starts_at),
        ends_at=db.aware(row.ends_at),
        cancelled=row.cancelled_at is not None if cancelled is None else cancelled,
    )


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
    """The bookings that overlap a day at the site (cancelled ones too, if asked); a guest
    who is another site's member is shown to an operator by id alone (``own_members``)."""
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
            query = query.where(b.cancelled_at.is_(None))
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
        )
        for r in rows
    ]
