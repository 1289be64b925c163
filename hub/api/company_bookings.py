"""A company admin books for their company's staff, within each one's allowance, and sees
the bookings the company paid for, by month: which days, where; never when anyone came in,
never what its staff booked on their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from hub.http.deps import CompanyAdmin, MailHost, Publisher, SendsMail, Store
from hub.services import booking_reads, bookings
from hub.services.booking_models import Booking, StaffBookingIn
from hub.services.booking_reads import MAX_LIST
from hub.services.bookings import Canceller

router = APIRouter(prefix="/company/bookings", tags=["company bookings"])
BookingId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: ASCII digits only (``\d`` takes any script's).
Month = Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


@router.post("", response_model=Booking, status_code=status.HTTP_201_CREATED)
def book(
    booking: StaffBookingIn,
    store: Store,
    publisher: Publisher,
    who: CompanyAdmin,
    mail_host: MailHost,
) -> Booking:
    """Book a desk or a room for one of your staff (``member``), within their allowance."""
    return bookings.book_for_staff(store, publisher, who, booking, mail_host)


@router.get("", response_model=list[Booking])
def list_bookings(
    store: Store,
    who: CompanyAdmin,
    month: Month,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = MAX_LIST,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[Booking]:
    """The bookings your company paid for whose day falls in ``month``, cancelled ones too,
    by day (also of people who have left your staff since; never their own)."""
    return booking_reads.staff_bookings(store, who, month, limit, offset)


@router.get("/{booking_id}", response_model=Booking)
def get_booking(booking_id: BookingId, store: Store, who: CompanyAdmin) -> Booking:
    return booking_reads.get_staff_booking(store, who, booking_id)


@router.delete("/{booking_id}", response_model=Booking)
def cancel(
    booking_id: BookingId,
    store: Store,
    publisher: Publisher,
    who: CompanyAdmin,
    sends_mail: SendsMail,
) -> Booking:
    """Cancel a booking your company paid for, until the site's cut-off before it starts;
    the desk goes to the first one waiting for it."""
    return bookings.cancel(
        store, publisher, who, booking_id, by=Canceller.EMPLOYER, sends_mail=sends_mail
    )
