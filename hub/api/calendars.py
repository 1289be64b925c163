"""Bookings in the member's own calendar: each booking's ``.ics``, and a private feed URL
(``/calendar/{token}.ics``, no sign-in: calendar apps cannot sign in) that the member makes,
replaces or ends."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel

from hub.http.deps import MemberId, PublicUrl, Store
from hub.services import calendars

router = APIRouter(tags=["calendars"])
ICS = "text/calendar; charset=utf-8"


class Feed(BaseModel):
    #: Whether the member has a feed (its URL is shown only when made).
    active: bool
    url: str | None = None


@router.get("/me/calendar/bookings/{booking_id}.ics", response_class=Response)
def booking_ics(
    booking_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    member: MemberId,
    store: Store,
    public_url: PublicUrl,
) -> Response:
    """One of your bookings, to add to your calendar."""
    body = calendars.booking_ics(store, member, booking_id, urlsplit(public_url).netloc)
    disposition = f'attachment; filename="booking-{booking_id}.ics"'
    return Response(body, media_type=ICS, headers={"Content-Disposition": disposition})


@router.get("/me/calendar", response_model=Feed)
def feed(member: MemberId, store: Store) -> Feed:
    """Whether you have a calendar feed (its secret URL was shown once, when made)."""
    return Feed(active=calendars.has_feed(store, member))


@router.post("/me/calendar", response_model=Feed, status_code=status.HTTP_201_CREATED)
def new_feed(member: MemberId, store: Store, public_url: PublicUrl) -> Feed:
    """A new private feed URL for your calendar app; the old one stops working."""
    token = calendars.new_feed(store, member)
    return Feed(active=True, url=f"{public_url}/calendar/{token}.ics")


@router.delete("/me/calendar", status_code=status.HTTP_204_NO_CONTENT)
def drop_feed(member: MemberId, store: Store) -> None:
    """End your feed: its URL stops working at once."""
    calendars.drop_feed(store, member)


@router.get("/calendar/{token}.ics", response_class=Response)
def calendar_feed(
    token: Annotated[str, Path(max_length=100)], store: Store, public_url: PublicUrl
) -> Response:
    """A member's bookings, for their calendar app: the URL's token is the only key."""
    body = calendars.feed_ics(store, token, urlsplit(public_url).netloc)
    # Private: a shared cache must not keep one member's calendar for another request.
    return Response(body, media_type=ICS, headers={"Cache-Control": "private, max-age=300"})
