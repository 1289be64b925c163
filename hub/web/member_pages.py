"""A member's own pages (``/ui/me``): who they are to the network, their cards (and reporting
one lost), their visits, their calendar feed, and each booking's ``.ics``.

The same services as the API's ``/me`` do the work (hub.services.self_service, .calendars),
on the signed-in member alone: no address here takes a member id, so another member's things
are not reachable at all. Reporting a card lost and ending the feed ask first, on a page of
their own (no script needed); every form is checked to come from the hub's own pages.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.auth import Principal, Role
from hub.http.deps import PublicUrl, Publisher, Store
from hub.services import calendars, self_service
from hub.services.errors import Forbidden, NotFound
from hub.services.scope import Scope
from hub.web.session import PREFIX, SameOrigin, Someone
from hub.web.templating import page

router = APIRouter(prefix=f"{PREFIX}/me", include_in_schema=False)
#: A card's short id (hub.services.self_service.card_id), with room to spare.
CardId = Annotated[str, Path(max_length=64)]
#: Visits the page lists (the last 90 days, newest first).
VISITS_SHOWN = 100
ICS = "text/calendar; charset=utf-8"


def signed_in_member(who: Someone) -> Principal:
    """The signed-in member (or company admin who is one); 403 for anyone else, whose
    account has no member's things to show."""
    Scope(who).require_role(Role.MEMBER, Role.COMPANY_ADMIN)
    if who.member_id is None:
        raise Forbidden("your account is not a member's")
    return who


Member = Annotated[Principal, Depends(signed_in_member)]


def _member_id(who: Principal) -> str:
    assert who.member_id is not None  # signed_in_member made sure
    return who.member_id


@router.get("")
def home(request: Request, store: Store, who: Member) -> HTMLResponse:
    """Who they are, their company and plans, and where to go from here."""
    profile = self_service.profile(store, who)
    cards = self_service.my_cards(store, who)
    feed = calendars.has_feed(store, _member_id(who))
    return page(request, "member/home.html", who, profile=profile, cards=cards, feed=feed)


@router.get("/cards")
def cards_page(
    request: Request, store: Store, who: Member, lost: str | None = None
) -> HTMLResponse:
    """Their cards; ``lost``: the card just reported (named only if it is theirs, and blocked)."""
    cards = self_service.my_cards(store, who)
    just_lost = next((c for c in cards if c.id == lost and c.revoked), None)
    return page(request, "member/cards.html", who, cards=cards, just_lost=just_lost)


@router.get("/cards/{card}/lost")
def confirm_lost(request: Request, card: CardId, store: Store, who: Member) -> HTMLResponse:
    """The second step: what reporting the card lost does, and the button that does it."""
    found = next((c for c in self_service.my_cards(store, who) if c.id == card), None)
    if found is None:
        raise NotFound("no such card")
    return page(request, "member/lost.html", who, card=found)


@router.post("/cards/{card}/lost", dependencies=[SameOrigin])
def report_lost(card: CardId, store: Store, publisher: Publisher, who: Member) -> Response:
    """Block the card at once, then back to the list, which says so (a reload posts nothing)."""
    self_service.report_lost(store, publisher, who, card)
    return RedirectResponse(f"{PREFIX}/me/cards?lost={card}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/visits")
def visits_page(request: Request, store: Store, who: Member) -> HTMLResponse:
    visits = self_service.my_visits(store, who, limit=VISITS_SHOWN)
    return page(
        request,
        "member/visits.html",
        who,
        visits=visits,
        days=self_service.DEFAULT_VISIT_DAYS,
        shown=VISITS_SHOWN,
    )


@router.get("/calendar")
def calendar_page(request: Request, store: Store, who: Member) -> HTMLResponse:
    """Whether they have a feed; its address is shown only when made."""
    active = calendars.has_feed(store, _member_id(who))
    return page(request, "member/calendar.html", who, active=active, url=None)


@router.post("/calendar", dependencies=[SameOrigin])
def new_feed(request: Request, store: Store, who: Member, public_url: PublicUrl) -> HTMLResponse:
    """A new feed address (the old one stops working), shown this once: as the address a
    calendar app subscribes to, and as its ``webcal://`` link, which phones open in theirs."""
    token = calendars.new_feed(store, _member_id(who))
    url = f"{public_url}/calendar/{token}.ics"
    webcal = "webcal://" + url.split("://", 1)[1]
    return page(request, "member/calendar.html", who, active=True, url=url, webcal=webcal)


@router.get("/calendar/end")
def confirm_end_feed(request: Request, store: Store, who: Member) -> Response:
    if not calendars.has_feed(store, _member_id(who)):
        return RedirectResponse(f"{PREFIX}/me/calendar", status_code=status.HTTP_303_SEE_OTHER)
    return page(request, "member/calendar_end.html", who)


@router.post("/calendar/end", dependencies=[SameOrigin])
def end_feed(store: Store, who: Member) -> Response:
    """End the feed: its address stops working at once."""
    calendars.drop_feed(store, _member_id(who))
    return RedirectResponse(f"{PREFIX}/me/calendar", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/bookings/{booking_id}.ics")
def booking_ics(
    booking_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    store: Store,
    who: Member,
    public_url: PublicUrl,
) -> Response:
    """One of their bookings as a calendar file (the API's ``/me/calendar/bookings/{id}.ics``
    for the session's member); another member's answers as none at all."""
    body = calendars.booking_ics(store, _member_id(who), booking_id, urlsplit(public_url).netloc)
    headers = {
        "Content-Disposition": f'attachment; filename="booking-{booking_id}.ics"',
        "Cache-Control": "no-store",
    }
    return Response(body, media_type=ICS, headers=headers)
