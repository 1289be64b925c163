"""The demo's bookings: its member books desks and the meeting room, its company admin books
a desk for one of their staff, all through the hub's booking service and its rules (as the
pages and the API would), so that the demo shows what a member and an employer see.

A booking the rules refuse (the site closed that day, the part of the day over) is skipped
with its reason: the demo starts at any hour of any day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from hub import db
from hub.auth import Principal, Role
from hub.services import bookings
from hub.services.booking_models import Booking, MyBookingIn, StaffBookingIn
from hub.services.errors import ServiceError
from sim.demo_network import TIMEZONE, Logins, Network

log = logging.getLogger(__name__)


def book_demo_days(engine: Engine, network: Network, logins: Logins) -> list[str]:
    """Make the demo's bookings; returns a line for each one made."""
    made: list[str] = []
    today = datetime.now(UTC).astimezone(ZoneInfo(TIMEZONE)).date()
    tomorrow = today + timedelta(days=1)
    sites = [s.id for s in network.sites]
    if logins.member is not None:
        member = _principal(engine, logins.member[0])
        wanted = [
            MyBookingIn(site=sites[0], kind="desk", day=today, part="day"),
            MyBookingIn(site=sites[-1], kind="desk", day=tomorrow, part="morning"),
            _room(sites[0], tomorrow),
        ]
        for booking in wanted:
            _try(made, partial(bookings.book_for_self, engine, None, member, booking))
    if logins.employer is not None:
        employer = _principal(engine, logins.employer[0])
        company = next(c for c in network.companies if c.id == logins.employer[2])
        staff = next((m for m in network.members if m.company == company.id), None)
        if staff is not None and company.sites:
            booking = StaffBookingIn(
                member=staff.id, site=company.sites[-1], kind="desk", day=tomorrow, part="day"
            )
            _try(made, partial(bookings.book_for_staff, engine, None, employer, booking))
    return made


def _room(site: str, day: date) -> MyBookingIn:
    start = datetime.combine(day, datetime.min.time().replace(hour=10), ZoneInfo(TIMEZONE))
    return MyBookingIn(
        site=site,
        kind="room",
        room="kajuete",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        attendees=4,
    )


def _try(made: list[str], book: Callable[[], Booking]) -> None:
    try:
        booking = book()
    except ServiceError as refused:
        log.info("demo booking skipped: %s", refused)
        return
    what = booking.room or f"desk ({booking.part})"
    made.append(f"{booking.member}: {what} at {booking.site} on {booking.day}")


def _principal(engine: Engine, username: str) -> Principal:
    u = db.users.c
    with engine.connect() as conn:
        user = conn.execute(select(db.users).where(u.username == username)).one()
    return Principal(
        user.id,
        user.username,
        Role(user.role),
        frozenset(),
        member_id=user.member_id,
        company_id=user.company_id,
    )
