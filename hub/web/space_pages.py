"""A member finds a space and books at it (``/ui/me/spaces``): the network's spaces nearest a
place they name (a postcode or a town) or where their phone is (its coordinates, filled in by
static/locate.js when they allow it), each with its desks free now and on a day; then a desk
for a day or half of it, or a room for some quarter hours, at one space.

The services do the work (hub.services.spaces finds, hub.services.bookings books, under
every rule of hub.services.booking_rules); a refused booking comes back on its form as typed,
with the service's reason in the visitor's language, and a day with no desk left offers its
waiting list. Every form is checked to come from the hub's own pages.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from hub.auth import Principal
from hub.http.deps import MailHost, Publisher, SpacesFinder, Store
from hub.services import bookings, spaces, waiting_list
from hub.services.booking_models import MAX_ATTENDEES, MyBookingIn
from hub.services.booking_rules import Rule, RuleBroken
from hub.services.desk_pool import Part
from hub.services.errors import Conflict, Invalid
from hub.services.places import MAX_QUERY
from hub.services.space_models import SpacesQuery
from hub.services.waiting_list import WaitingIn
from hub.web.i18n import refusal, translator
from hub.web.member_pages import Member
from hub.web.session import PREFIX, SameOrigin
from hub.web.templating import page

router = APIRouter(prefix=f"{PREFIX}/me", include_in_schema=False)
#: Spaces the page lists, nearest first.
SHOWN = 30
SiteId = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
#: A day as a date input sends it; a malformed one is the page's own 400.
DayAsked = Annotated[date | None, Query()]


class BookingForm(BaseModel):
    """The booking forms as typed: a desk (day, part) or a room (day, from, until, people)."""

    kind: str = "desk"
    day: str = ""
    part: str = Part.DAY.value
    room: str = ""
    start: str = ""
    end: str = ""
    attendees: str = "1"


@router.get("/spaces")
def find_page(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    who: Member,
    near: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    day: DayAsked = None,
) -> HTMLResponse:
    """The spaces nearest the place asked for (the name typed, else the coordinates the phone
    gave), by name without one; a place not found is said beside the field."""
    named = near.strip() or None
    located = named is None and lat is not None and lon is not None
    query = SpacesQuery(
        latitude=lat if located else None,
        longitude=lon if located else None,
        near=named,
        day=day,
        limit=SHOWN,
    )
    error, code = None, status.HTTP_200_OK
    try:
        found = spaces.find_spaces(store, finder, query).model()
    except Invalid as exc:
        error, code = refusal(request, exc), status.HTTP_422_UNPROCESSABLE_CONTENT
        found = spaces.find_spaces(store, finder, SpacesQuery(limit=SHOWN)).model()
    hours = spaces.opening_on(store, finder, found.spaces)
    shown_day = day or (found.spaces[0].day if found.spaces else date.today())
    response = page(
        request,
        "member/spaces.html",
        who,
        found=found,
        hours=hours,
        near=near,
        located=located and error is None,
        shown_day=shown_day,
        error=error,
    )
    response.status_code = code
    return response


@router.get("/spaces/{site}/book")
def book_page(
    request: Request,
    site: SiteId,
    store: Store,
    finder: SpacesFinder,
    who: Member,
    day: DayAsked = None,
) -> HTMLResponse:
    """The forms to book a desk or a room at one space, for ``day`` (default: its today)."""
    space, _ = spaces.one_space(store, finder, site, day)
    return _book_form(request, store, finder, who, site, BookingForm(day=space.day.isoformat()))


@router.post("/spaces/{site}/book", dependencies=[SameOrigin])
def book(
    request: Request,
    site: SiteId,
    store: Store,
    finder: SpacesFinder,
    publisher: Publisher,
    who: Member,
    mail_host: MailHost,
    kind: Annotated[str, Form(max_length=10)] = "desk",
    day: Annotated[str, Form(max_length=10)] = "",
    part: Annotated[str, Form(max_length=10)] = Part.DAY.value,
    room: Annotated[str, Form(max_length=64)] = "",
    start: Annotated[str, Form(max_length=5)] = "",
    end: Annotated[str, Form(max_length=5)] = "",
    attendees: Annotated[str, Form(max_length=4)] = "1",
) -> Response:
    """Book what the form asks for; made, on to the member's bookings, which confirm it."""
    form = BookingForm(
        kind=kind, day=day, part=part, room=room, start=start, end=end, attendees=attendees
    )
    _, zone = spaces.one_space(store, finder, site)
    try:
        wanted = _wanted(site, form, ZoneInfo(zone))
    except ValidationError:
        error = _form_refusal(request, form)
        return _book_form(request, store, finder, who, site, form, error, 422)
    try:
        made = bookings.book_for_self(store, publisher, who, wanted, mail_host)
    except (RuleBroken, Invalid, Conflict) as exc:
        full = isinstance(exc, RuleBroken) and exc.rule == Rule.FULL
        code = 409 if isinstance(exc, Conflict) else 422
        return _book_form(
            request, store, finder, who, site, form, refusal(request, exc), code, full
        )
    return RedirectResponse(
        f"{PREFIX}/me/bookings?booked={made.id}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.post("/spaces/{site}/waiting", dependencies=[SameOrigin])
def join_waiting_list(
    request: Request,
    site: SiteId,
    store: Store,
    finder: SpacesFinder,
    who: Member,
    day: Annotated[str, Form(max_length=10)] = "",
    part: Annotated[str, Form(max_length=10)] = Part.DAY.value,
) -> Response:
    """Wait for a desk on a day that has none left; refused, the booking form says why."""
    form = BookingForm(day=day, part=part)
    try:
        wanted = WaitingIn.model_validate({"site": site, "day": day, "part": part})
    except ValidationError:
        return _book_form(
            request, store, finder, who, site, form, _form_refusal(request, form), 422
        )
    try:
        entry = waiting_list.join_own(store, who, wanted)
    except (RuleBroken, Invalid, Conflict) as exc:
        code = 409 if isinstance(exc, Conflict) else 422
        return _book_form(request, store, finder, who, site, form, refusal(request, exc), code)
    return RedirectResponse(
        f"{PREFIX}/me/bookings?waiting={entry.id}", status_code=status.HTTP_303_SEE_OTHER
    )


def _wanted(site: str, form: BookingForm, zone: ZoneInfo) -> MyBookingIn:
    """The booking the form asks for, as the API takes it; a room's times are the site's
    local clock on the day. ValidationError for what cannot be read."""
    if form.kind != "room":
        desk = {"site": site, "kind": "desk", "day": form.day, "part": form.part}
        return MyBookingIn.model_validate(desk)
    starts: datetime | None = None
    ends: datetime | None = None
    try:
        on = date.fromisoformat(form.day)
        starts = datetime.combine(on, time.fromisoformat(form.start), tzinfo=zone)
        ends = datetime.combine(on, time.fromisoformat(form.end), tzinfo=zone)
    except ValueError:
        pass  # the model says what is missing
    room = {
        "site": site,
        "kind": "room",
        "room": form.room or None,
        "starts_at": starts,
        "ends_at": ends,
        "attendees": form.attendees or None,
    }
    return MyBookingIn.model_validate(room)


def _form_refusal(request: Request, form: BookingForm) -> str:
    """What cannot be read in the form, in words."""
    _ = translator(request)
    if form.kind == "room":
        return _(
            "Choose a room, a day, a start and an end after it (on the same day), and from 1 to"
            " %(most)s people."
        ) % {"most": MAX_ATTENDEES}
    return _("Choose a day, and the whole day, the morning or the afternoon.")


def _book_form(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    who: Principal,
    site: str,
    form: BookingForm,
    error: str | None = None,
    status_code: int = 200,
    full: bool = False,
) -> HTMLResponse:
    """The booking page with ``form`` as typed; a space on the form's day if it can be read."""
    try:
        space, zone = spaces.one_space(store, finder, site, date.fromisoformat(form.day))
    except (ValueError, Invalid):  # no day, or one it cannot show: the space today
        space, zone = spaces.one_space(store, finder, site)
    hours = spaces.opening_on(store, finder, [space])
    context: dict[str, Any] = {"space": space, "hours": hours.get(site, []), "zone": zone}
    response = page(request, "member/book.html", who, form=form, error=error, full=full, **context)
    response.status_code = status_code
    return response
