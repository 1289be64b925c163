"""An employer books for their staff (``/ui/company/bookings``): the bookings the company made
(coming, and the last week's, used or not: days, never times) with cancelling, the staff's
waiting-list entries with leaving, and "Book for staff": a person, a place near them, a day
and its part, then the spaces nearest that place with a desk (or a room for hours) to book.

The services do the work, each as the API's ``/company/bookings`` and ``/company/waiting``
(hub.services.bookings, .waiting_list; .staff_bookings for the list and a room's local
hours; .spaces for the spaces near a place): a refusal (the allowance used up, a site the
company does not book, a full or closed day, one past or too far ahead) comes back on the
form in the service's words, and a full day offers the waiting list instead. A person not on
the admin's own staff, or their booking, answers as none (404).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError

from hub.auth import Principal
from hub.http.deps import MailHost, Publisher, SendsMail, SpacesFinder, Store
from hub.services import bookings, companies, staff, staff_bookings, waiting_list
from hub.services.booking_models import StaffBookingIn
from hub.services.booking_rules import Rule, RuleBroken
from hub.services.bookings import Canceller
from hub.services.bounds import Day
from hub.services.desk_pool import Part
from hub.services.errors import Conflict, Invalid, NotFound, ServiceError
from hub.services.space_models import Space, SpacesQuery
from hub.services.spaces import find_spaces
from hub.services.waiting_list import StaffWaitingIn
from hub.web.employer_pages import Employer
from hub.web.i18n import translator
from hub.web.session import PREFIX, SameOrigin
from hub.web.templating import form_page

router = APIRouter(prefix=f"{PREFIX}/company", include_in_schema=False)
#: Spaces the form lists, nearest first (a person books near home, not across the region).
SPACES_SHOWN = 10
#: An id in an address or a notice (as the API's ``BookingId``).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NoticeId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
_DAY = TypeAdapter(Day)
Model = TypeVar("Model", bound=BaseModel)


class BookingForm(BaseModel):
    """The form "Book for staff", as typed: whom, near where, which day and part; and, once
    a space is chosen, its site and (for a room) the room, its hours and how many come. The
    search asks it in the address, a booking and the waiting list post it; each field is
    text, bounded, and read by the page (``_day``, ``_part`` ...) or the service."""

    member: Annotated[str, Field(max_length=64)] = ""
    near: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    day: Annotated[str, Field(max_length=20)] = ""
    part: Annotated[str, Field(max_length=20)] = Part.DAY.value
    site: Annotated[str, Field(max_length=64)] = ""
    room: Annotated[str, Field(max_length=64)] = ""
    start: Annotated[str, Field(max_length=10)] = ""
    end: Annotated[str, Field(max_length=10)] = ""
    attendees: Annotated[str, Field(max_length=10)] = ""


class WaitingOffer(BaseModel):
    """A full day's offer: put the person on the site's waiting list for that day and part."""

    site: str
    day: date
    part: Part


def _to_list(notice: str, value: int) -> Response:
    where = f"{PREFIX}/company/bookings?{notice}={value}"
    return RedirectResponse(where, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/bookings")
def bookings_page(
    request: Request,
    store: Store,
    who: Employer,
    booked: NoticeId = None,
    cancelled: NoticeId = None,
    waiting: NoticeId = None,
    left: NoticeId = None,
) -> HTMLResponse:
    """The company's bookings for its staff and their waiting-list entries, and what was just
    done."""
    notice = {"booked": booked, "cancelled": cancelled, "waiting": waiting, "left": left}
    return _bookings(request, store, who, notice=notice)


@router.post("/bookings/{booking_id}/cancel", dependencies=[SameOrigin])
def cancel_booking(
    request: Request,
    booking_id: RowId,
    store: Store,
    publisher: Publisher,
    who: Employer,
    sends_mail: SendsMail,
) -> Response:
    """Cancel a booking until the site's cut-off; its desk goes to whoever waits for it."""
    try:
        bookings.cancel(
            store, publisher, who, booking_id, by=Canceller.EMPLOYER, sends_mail=sends_mail
        )
    except Conflict as exc:
        return _bookings(request, store, who, exc)
    return _to_list("cancelled", booking_id)


@router.post("/waiting/{entry_id}/leave", dependencies=[SameOrigin])
def leave_waiting(entry_id: RowId, store: Store, who: Employer) -> Response:
    waiting_list.leave_for_staff(store, who, entry_id)
    return _to_list("left", entry_id)


@router.get("/bookings/new")
def booking_form(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    who: Employer,
    form: Annotated[BookingForm, Query()],
) -> HTMLResponse:
    """The form; once a person and a day are given, the spaces nearest the place given (by
    name, without one), each with its desks free that day and its rooms."""
    if not form.day:  # not asked yet: the form alone, for tomorrow
        tomorrow = (date.today() + timedelta(days=1)).isoformat()
        form = form.model_copy(update={"day": tomorrow})
        return _booking_page(request, store, finder, who, form, search=False)
    return _booking_page(request, store, finder, who, form)


@router.post("/bookings", dependencies=[SameOrigin])
def book(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    publisher: Publisher,
    who: Employer,
    confirm: MailHost,
    form: Annotated[BookingForm, Form()],
) -> Response:
    """Book a desk for the day's part, or the room for the hours given, at the space chosen;
    refused, the form and its spaces again with the reason (and, for a full day, the waiting
    list)."""
    member = staff.get_staff(store, who, form.member).id  # another's: 404, before all else
    try:
        when, what = _day(request, form.day), _part(request, form.part)
        if form.room:
            hours = _hours(request, form.start, form.end)
            made = staff_bookings.book_room_for_staff(
                store,
                publisher,
                who,
                member,
                form.site,
                form.room,
                when,
                hours,
                _attendees(request, form.attendees),
                confirm,
            )
        else:
            wanted = _checked(
                request,
                lambda: StaffBookingIn(member=member, site=form.site, day=when, part=what),
            )
            made = bookings.book_for_staff(store, publisher, who, wanted, confirm)
    except (Invalid, Conflict, NotFound) as exc:
        offer = None
        if isinstance(exc, RuleBroken) and exc.rule == Rule.FULL and not form.room:
            offer = WaitingOffer(site=form.site, day=when, part=what)
        return _booking_page(request, store, finder, who, form, error=exc, offer=offer)
    return _to_list("booked", made.id)


@router.post("/waiting", dependencies=[SameOrigin])
def wait(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    who: Employer,
    form: Annotated[BookingForm, Form()],
) -> Response:
    """Put the person on the waiting list of a full day: when a desk frees, it is booked
    for them (and they are told by mail)."""
    member = staff.get_staff(store, who, form.member).id
    try:
        when, what = _day(request, form.day), _part(request, form.part)
        wanted = _checked(
            request,
            lambda: StaffWaitingIn(member=member, site=form.site, day=when, part=what),
        )
        entry = waiting_list.join_for_staff(store, who, wanted)
    except (Invalid, Conflict, NotFound) as exc:
        return _booking_page(request, store, finder, who, form, error=exc)
    return _to_list("waiting", entry.id)


def _bookings(
    request: Request,
    store: Store,
    who: Principal,
    error: ServiceError | None = None,
    notice: dict[str, int | None] | None = None,
) -> HTMLResponse:
    people = {p.id: p.name for p in staff.list_staff(store, who, None, staff.MAX_LISTED)}
    return form_page(
        request,
        "employer/bookings.html",
        who,
        error,
        bookings=staff_bookings.made_by_company(store, who),
        waiting=waiting_list.list_for_company(store, who),
        names=people,
        notice=notice or {},
    )


def _booking_page(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    who: Principal,
    form: BookingForm,
    *,
    search: bool = True,
    error: str | ServiceError | None = None,
    offer: WaitingOffer | None = None,
) -> HTMLResponse:
    """The form as typed, the spaces it finds (when asked), and the refusal beside it."""
    assert who.company_id is not None  # Employer made sure
    person = staff.get_staff(store, who, form.member) if form.member else None
    spaces: list[Space] | None = None
    if search:
        try:
            spaces = _spaces(request, store, finder, form, person is not None)
        except Invalid as exc:
            error = error or exc
    return form_page(
        request,
        "employer/book.html",
        who,
        error,
        company=companies.get_company(store, who.company_id),
        people=staff.list_staff(store, who, None, staff.MAX_LISTED),
        person=person,
        form=form,
        spaces=spaces,
        offer=offer,
    )


def _spaces(
    request: Request, store: Store, finder: SpacesFinder, form: BookingForm, chosen: bool
) -> list[Space]:
    """The bookable spaces nearest the place the form names, on its day."""
    _ = translator(request)
    if not chosen:
        raise Invalid(_("Choose the person you book for."))
    query = _checked(
        request,
        lambda: SpacesQuery(
            near=form.near or None,
            day=_day(request, form.day),
            limit=SPACES_SHOWN,
            bookable=True,
        ),
    )
    _part(request, form.part)
    return find_spaces(store, finder, query).model().spaces


def _checked(request: Request, build: Callable[[], Model]) -> Model:
    """The model ``build`` makes of the form; a field it refuses (a form changed by hand)
    as Invalid, in words."""
    try:
        return build()
    except ValidationError as exc:
        _ = translator(request)
        first = exc.errors()[0]
        if first["loc"] and first["loc"][0] == "site":
            raise Invalid(_("Space: choose one of the spaces listed.")) from None
        raise Invalid(first["msg"].removeprefix("Value error, ")) from None


def _day(request: Request, text: str) -> date:
    _ = translator(request)
    try:
        return _DAY.validate_python(date.fromisoformat(text))
    except (ValueError, ValidationError):
        raise Invalid(_("Day: a date such as 2026-12-07.")) from None


def _part(request: Request, text: str) -> Part:
    _ = translator(request)
    try:
        return Part(text)
    except ValueError:
        raise Invalid(_("Part of the day: the whole day, the morning or the afternoon.")) from None


def _hours(request: Request, start: str, end: str) -> tuple[time, time]:
    _ = translator(request)
    try:
        hours = time.fromisoformat(start), time.fromisoformat(end)
    except ValueError:
        hours = None
    # A time with a zone of its own ("09:00Z") is not one read off the space's clock.
    if hours is None or any(clock.tzinfo for clock in hours) or hours[0] >= hours[1]:
        raise Invalid(_("Room: a time from and a later time until, such as 09:00 and 11:00."))
    return hours


def _attendees(request: Request, text: str) -> int | None:
    _ = translator(request)
    if not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise Invalid(_("People: a whole number, such as 4.")) from None
