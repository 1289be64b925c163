"""A member's own things: their profile, cards (report one lost) and visits. Every route
works on the signed-in member alone: no route here takes a member id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hub.http.deps import Member, Publisher, Store
from hub.services import self_service
from hub.services.bounds import Day
from hub.services.self_service import MAX_VISITS, MyCard, MyVisit, Profile

router = APIRouter(prefix="/me", tags=["me"])


@router.get("/profile", response_model=Profile)
def profile(store: Store, who: Member) -> Profile:
    """Who you are to the network: your name, address, company and plans."""
    return self_service.profile(store, who)


@router.get("/cards", response_model=list[MyCard])
def cards(store: Store, who: Member) -> list[MyCard]:
    """Your cards, each by a short id (never its number), and whether it is revoked."""
    return self_service.my_cards(store, who)


@router.post("/cards/{card}/lost", response_model=MyCard)
def lost(
    card: Annotated[str, Path(max_length=64)], store: Store, publisher: Publisher, who: Member
) -> MyCard:
    """Report a card lost: it is revoked at once, and every door refuses it within seconds."""
    return self_service.report_lost(store, publisher, who, card)


@router.get("/visits", response_model=list[MyVisit])
def visits(
    store: Store,
    who: Member,
    since: Annotated[Day | None, Query(description="First day; default: 90 days ago.")] = None,
    until: Annotated[Day | None, Query(description="Last day; default: today.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_VISITS)] = 100,
) -> list[MyVisit]:
    """Your days at the network's spaces, newest first, with your first and last entry."""
    return self_service.my_visits(store, who, since, until, limit)
