"""Bookings and blocks for the network's staff: network admins book anywhere, operators at
their sites (day guests, desks, rooms), beyond the member's allowance; a block shuts a member
out everywhere. Each goes to the doors at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from hub.http.deps import Admin, Caller, MailHost, Publisher, SendsMail, Store
from hub.services import booking_reads, bookings, members
from hub.services.booking_models import Booking, BookingIn

router = APIRouter(tags=["bookings"])
BookingId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/sites/{site}/bookings", response_model=Booking, status_code=status.HTTP_201_CREATED)
def book(
    site: str,
    booking: BookingIn,
    store: Store,
    publisher: Publisher,
    who: Caller,
    mail_host: MailHost,
) -> Booking:
    """Book for a member: a desk (``day`` and ``part``), a room (``room``, ``starts_at``,
    ``ends_at``, ``attendees``) or a day guest (``starts_at``, ``ends_at``). Every rule of
    booking holds but the member's allowance: the staff may book beyond it."""
    return bookings.book(store, publisher, who, site, booking, mail_host)


@router.get("/bookings/{booking_id}", response_model=Booking)
def get_booking(booking_id: BookingId, store: Store, who: Caller) -> Booking:
    """One booking: network admins any, operators those at their sites."""
    return booking_reads.get_booking(store, who, booking_id)


@router.delete("/bookings/{booking_id}", response_model=Booking)
def cancel(
    booking_id: BookingId, store: Store, publisher: Publisher, who: Caller, sends_mail: SendsMail
) -> Booking:
    """Cancel a booking at any time: the access it gave is taken back at its site, and the
    desk goes to the first one waiting for it."""
    return bookings.cancel(store, publisher, who, booking_id, sends_mail=sends_mail)


@router.post("/members/{member}/block", status_code=status.HTTP_204_NO_CONTENT)
def block(member: str, store: Store, publisher: Publisher, _: Admin) -> None:
    """Shut a member out of every door (unpaid, banned); their cards are kept."""
    members.set_blocked(store, publisher, member, True)


@router.post("/members/{member}/unblock", status_code=status.HTTP_204_NO_CONTENT)
def unblock(member: str, store: Store, publisher: Publisher, _: Admin) -> None:
    members.set_blocked(store, publisher, member, False)
