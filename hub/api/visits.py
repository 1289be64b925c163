"""A site's day as its operator sees it: who visited (from the doors' decisions) and which day
guests are booked. Days are calendar days in the site's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import Connection, select

from hub import db
from hub.api.deps import Caller, Store, site_zone
from hub.auth import Principal

router = APIRouter(tags=["operators"])
Day = Annotated[date | None, Query(description="A day in the site's time zone; default today.")]


class Visit(BaseModel):
    member: str
    name: str | None
    first_entry: datetime
    last_entry: datetime
    entries: int


class DayGuest(BaseModel):
    booking: int
    member: str
    name: str | None
    kind: str
    starts_at: datetime
    ends_at: datetime
    cancelled: bool


def _day_span(conn: Connection, who: Principal, site: str, day: date | None) -> tuple:
    """The site's [start, end) of ``day`` in UTC; 404 for a site the caller may not see."""
    tz = site_zone(conn, who, site)
    day = day or datetime.now(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@router.get("/sites/{site}/visits", response_model=list[Visit])
def visits(site: str, store: Store, who: Caller, day: Day = None) -> list[Visit]:
    """Who came in on a day: each member's first and last entry and how many times the door
    let them in (after retention, members appear only by pseudonym and without a name).

    Read from the visits roll-up that ingest keeps (hub/rollups.py), as the reports are.
    """
    v = db.visits.c
    with store.connect() as conn:
        tz = site_zone(conn, who, site)
        day = day or datetime.now(tz).date()
        rows = conn.execute(
            select(v.member, v.first_at, v.last_at, v.entries, db.members.c.name)
            .outerjoin(db.members, db.members.c.id == v.member)
            .where(v.site == site, v.day == day.isoformat())
            .order_by(v.first_at)
        ).all()
    return [
        Visit(
            member=r.member,
            name=r.name,
            first_entry=db.aware(r.first_at),
            last_entry=db.aware(r.last_at),
            entries=r.entries,
        )
        for r in rows
    ]


@router.get("/sites/{site}/bookings", response_model=list[DayGuest])
def day_guests(
    site: str, store: Store, who: Caller, day: Day = None, cancelled: bool = False
) -> list[DayGuest]:
    """The bookings that overlap a day at the site: day guests and desk bookings."""
    b = db.bookings.c
    with store.connect() as conn:
        start, end = _day_span(conn, who, site, day)
        query = (
            select(db.bookings, db.members.c.name)
            .outerjoin(db.members, db.members.c.id == b.member_id)
            .where(b.site_id == site, b.starts_at < end, b.ends_at > start)
            .order_by(b.starts_at, b.id)
        )
        if not cancelled:
            query = query.where(b.cancelled_at.is_(None))
        rows = conn.execute(query).all()
    return [
        DayGuest(
            booking=r.id,
            member=r.member_id,
            name=r.name,
            kind=r.kind,
            starts_at=db.aware(r.starts_at),
            ends_at=db.aware(r.ends_at),
            cancelled=r.cancelled_at is not None,
        )
        for r in rows
    ]
