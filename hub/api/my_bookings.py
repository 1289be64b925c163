"""A member's own bookings: book a desk or a room within their allowance, list, read and
cancel them (until the site's cut-off). Another member's booking answers as none."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from hub.http.deps import MailHost, Member, Publisher, SendsMail, Store
from hub.services import booking_reads, bookings
from hub.services.booking_models import Booking, MyBookingIn
from hub.services.booking_reads import MAX_LIST, When
from hub.services.bookings import Canceller

router = APIRouter(prefix="/me/bookings", tags=["my bookings"])
BookingId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("", response_model=Booking, status_code=status.HTTP_201_CREATED)
def book(
    booking: MyBookingIn, store: Store, publisher: Publisher, who: Member, mail_host: MailHost
) -> Booking:
    """Book a desk for a day, a morning or an afternoon (``day``, ``part``), or a room for
    some quarter hours (``room``, ``starts_at``, ``ends_at``, ``attendees``) at a site your
    plan or employer allows. A refusal names the rule and what would work instead."""
    return bookings.book_for_self(store, publisher, who, booking, mail_host)


@router.get("", response_model=list[Booking])
def list_bookings(
    store: Store,
    who: Member,
    when: When = When.UPCOMING,
    cancelled: Annotated[bool, Query(description="Also those cancelled.")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[Booking]:
    """Your bookings not over yet (soonest first), or those over (``when=past``, latest
    first). Each has its ``state``: booked, arrived (your card opened the site's door in its
    time), cancelled, or released (``released_at``: nobody tapped in by its start plus the
    site's grace time, so the desk went back to the pool)."""
    return booking_reads.own_bookings(store, who, when, cancelled, limit, offset)


@router.get("/{booking_id}", response_model=Booking)
def get_booking(booking_id: BookingId, store: Store, who: Member) -> Booking:
    return booking_reads.get_own_booking(store, who, booking_id)


@router.delete("/{booking_id}", response_model=Booking)
def cancel(
    booking_id: BookingId, store: Store, publisher: Publisher, who: Member, sends_mail: SendsMail
) -> Booking:
    """Cancel one of your bookings, until the site's cut-off before it starts (usually an
    hour); the door stops letting you in for it, and the desk goes to the first one waiting
    for it."""
    return bookings.cancel(
        store, publisher, who, booking_id, by=Canceller.MEMBER, sends_mail=sends_mail
    )
