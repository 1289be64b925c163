"""The bookings a company made for its staff, as its admin's pages show them, and a room
booked for them by the site's clock.

What the employer sees of a booking is what they booked (who, where, which day and part, a
room's booked hours) and, once its time is over, whether it was used: never when anyone came
in, nor whether they have come yet while the booking runs (``use`` stays ``booked`` until it
ends, also when nobody came and the desk was given back). The bookings listed are those the
company's allowance paid for (``bookings.company_id``: booked by its admins, or by the staff
themselves within it) and that were not cancelled, from ``RECENT_DAYS`` ago on: the
employer sees how the last week went beside what is coming, and can cancel what the API
lets them cancel; a booking on the member's own plan is theirs alone.

Booking and cancelling themselves are ``bookings.book_for_staff`` and
``bookings.cancel`` (as the employer), as through the API.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, Row, select

from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal
from hub.services import bookings
from hub.services.booking_models import Booking, StaffBookingIn
from hub.services.booking_rules import SiteRules
from hub.services.bookings import own_company
from hub.services.desk_pool import Part
from hub.services.errors import Invalid

#: How far back the list goes: the last week's bookings show whether they were used.
RECENT_DAYS = 7
#: The most bookings one list shows (a company books a few a day).
MAX_SHOWN = 200
Use = Literal["booked", "used", "not_used"]


class StaffBookingShown(BaseModel):
    """One booking the company made, as its admin sees it."""

    id: int
    member: str
    name: str
    site: str
    site_name: str
    kind: str
    #: The site's local day.
    day: date
    part: Part | None
    room: str | None
    #: A room's booked hours on the site's clock (a desk's come from its part).
    room_from: time | None
    room_until: time | None
    #: booked until it is over; then used (its member tapped in at the site in its time) or
    #: not_used.
    use: Use
    #: Whether the company may still cancel it: it holds, and the site's cut-off before its
    #: start has not passed.
    cancellable: bool


def made_by_company(
    engine: Engine, who: Principal, now: datetime | None = None, limit: int = MAX_SHOWN
) -> list[StaffBookingShown]:
    """The bookings the company admin's company paid for that end after ``RECENT_DAYS``
    ago, soonest first (see the module for what each shows)."""
    company = own_company(who)
    now = now or datetime.now(UTC)
    b, m, s = db.bookings.c, db.members.c, db.sites.c
    query = (
        select(
            db.bookings,
            m.name.label("member_name"),
            s.name.label("site_name"),
            s.timezone,
            s.cancel_minutes,
        )
        .join(db.members, m.id == b.member_id)
        .join(db.sites, s.id == b.site_id)
        .where(
            b.company_id == company,
            b.cancelled_at.is_(None),
            b.ends_at > now - timedelta(days=RECENT_DAYS),
        )
        .order_by(b.starts_at, b.id)
        .limit(min(limit, MAX_SHOWN))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_shown(row, now) for row in rows]


def _shown(row: Row, now: datetime) -> StaffBookingShown:
    starts, ends = db.aware(row.starts_at), db.aware(row.ends_at)
    assert starts is not None and ends is not None  # both NOT NULL
    zone = ZoneInfo(row.timezone)
    use: Use = "booked"
    if ends <= now:
        use = "used" if row.arrived_at is not None else "not_used"
    deadline = starts - timedelta(minutes=row.cancel_minutes)
    room = row.kind == "room"
    return StaffBookingShown(
        id=row.id,
        member=row.member_id,
        name=row.member_name or row.member_id,
        site=row.site_id,
        site_name=row.site_name or row.site_id,
        kind=row.kind,
        day=row.day or starts.astimezone(zone).date(),
        part=Part(row.part) if row.part else None,
        room=row.room_id,
        room_from=starts.astimezone(zone).time() if room else None,
        room_until=ends.astimezone(zone).time() if room else None,
        use=use,
        cancellable=row.released_at is None and now <= deadline,
    )


def book_room_for_staff(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    member: str,
    site: str,
    room: str,
    day: date,
    hours: tuple[time, time],
    attendees: int | None = None,
    confirm: str | None = None,
) -> Booking:
    """Book ``room`` at ``site`` for one of the company's staff on ``day`` from and until
    ``hours`` on the site's clock (what an employer reads off the site's door), through
    ``bookings.book_for_staff`` and all its rules."""
    with engine.connect() as conn:
        rules = SiteRules.load(conn, site)
    starts, ends = (rules.at(day, clock.hour * 60 + clock.minute) for clock in hours)
    try:
        wanted = StaffBookingIn(
            kind="room",
            member=member,
            site=site,
            room=room,
            starts_at=starts,
            ends_at=ends,
            attendees=attendees,
        )
    except ValidationError as exc:
        raise Invalid(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    return bookings.book_for_staff(engine, publisher, who, wanted, confirm)
