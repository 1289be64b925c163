"""A member's bookings (``/ui/me/bookings``): those to come and those over, each with where,
when and how it stands (booked, arrived, released, cancelled), its calendar file, and a way
to cancel it (after a second step that says what cancelling does); and the waiting lists
they are on, each with a way to leave it.

The services do the work (hub.services.booking_reads, .bookings, .waiting_list) for the
signed-in member alone: another member's booking or entry answers as none (404). A
cancellation refused after the site's cut-off comes back on its page with the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.auth import Principal
from hub.http.deps import Publisher, SendsMail, SpacesFinder, Store
from hub.services import booking_reads, bookings, waiting_list
from hub.services.booking_models import Booking
from hub.services.booking_reads import When
from hub.services.booking_rules import RuleBroken
from hub.services.bookings import Canceller
from hub.web.i18n import refusal
from hub.web.member_pages import Member
from hub.web.session import PREFIX, SameOrigin
from hub.web.templating import page

router = APIRouter(prefix=f"{PREFIX}/me", include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: A notice's id in the address (a booking or entry just made, cancelled or left).
Notice = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
#: Bookings the page lists: to come (soonest first), and over (latest first).
UPCOMING_SHOWN, PAST_SHOWN = 100, 20


@router.get("/bookings")
def bookings_page(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    who: Member,
    booked: Notice = None,
    cancelled: Notice = None,
    waiting: Notice = None,
    left: Notice = None,
) -> HTMLResponse:
    """Their bookings and waiting lists, and what was just done (named only if theirs)."""
    upcoming = booking_reads.own_bookings(store, who, When.UPCOMING, True, UPCOMING_SHOWN)
    past = booking_reads.own_bookings(store, who, When.PAST, True, PAST_SHOWN)
    entries = waiting_list.list_own(store, who)
    mine = {b.id: b for b in upcoming + past}
    notice = {
        "booked": mine.get(booked) if booked else None,
        "cancelled": mine.get(cancelled) if cancelled else None,
        "waiting": next((e for e in entries if e.id == waiting), None),
        "left": next((e for e in entries if e.id == left), None),
    }
    return page(
        request,
        "member/bookings.html",
        who,
        upcoming=upcoming,
        past=past,
        entries=entries,
        notice=notice,
        past_shown=PAST_SHOWN,
        **_sites(store, finder),
    )


@router.get("/bookings/{booking_id}/cancel")
def confirm_cancel(
    request: Request, booking_id: Id, store: Store, finder: SpacesFinder, who: Member
) -> HTMLResponse:
    """The second step: which booking, and what cancelling it does."""
    booking = booking_reads.get_own_booking(store, who, booking_id)
    return _cancel_page(request, store, finder, who, booking)


@router.post("/bookings/{booking_id}/cancel", dependencies=[SameOrigin])
def cancel(
    request: Request,
    booking_id: Id,
    store: Store,
    finder: SpacesFinder,
    publisher: Publisher,
    who: Member,
    sends_mail: SendsMail,
) -> Response:
    """Cancel it and go back to the list, which says so; after the cut-off, the reason."""
    try:
        bookings.cancel(
            store, publisher, who, booking_id, by=Canceller.MEMBER, sends_mail=sends_mail
        )
    except RuleBroken as exc:
        booking = booking_reads.get_own_booking(store, who, booking_id)
        return _cancel_page(request, store, finder, who, booking, refusal(request, exc))
    return RedirectResponse(
        f"{PREFIX}/me/bookings?cancelled={booking_id}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.post("/waiting/{entry_id}/leave", dependencies=[SameOrigin])
def leave(entry_id: Id, store: Store, who: Member) -> Response:
    """Leave a waiting list; back to the list, which says so."""
    waiting_list.leave_own(store, who, entry_id)
    return RedirectResponse(
        f"{PREFIX}/me/bookings?left={entry_id}", status_code=status.HTTP_303_SEE_OTHER
    )


def _sites(store: Store, finder: SpacesFinder) -> dict[str, dict[str, str]]:
    """The sites' names and time zones, by id: a booking names its site and shows its times
    on the site's clock."""
    directory = finder.directory(store)
    names = {entry.site.id: entry.site.name for entry in directory.entries}
    return {"names": names, "zones": directory.zones}


def _cancel_page(
    request: Request,
    store: Store,
    finder: SpacesFinder,
    who: Principal,
    booking: Booking,
    error: str | None = None,
) -> HTMLResponse:
    sites = _sites(store, finder)
    response = page(request, "member/cancel.html", who, b=booking, error=error, **sites)
    if error is not None:
        response.status_code = status.HTTP_409_CONFLICT
    return response
