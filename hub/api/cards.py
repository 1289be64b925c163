"""Members' cards: registered by UID (only its keyed hash is kept), revoked when lost."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.http.deps import Admin, CardKey, Publisher, Store
from hub.services import cards
from hub.services.cards import Card, CardIn

router = APIRouter(tags=["members"])


@router.post("/members/{member}/cards", response_model=Card, status_code=status.HTTP_201_CREATED)
def add_card(
    member: str, card: CardIn, store: Store, publisher: Publisher, card_key: CardKey, _: Admin
) -> Card:
    """Register a card by its UID; only its keyed hash is kept (and returned)."""
    return cards.add_card(store, publisher, card_key, member, card)


@router.post("/cards/{card}/revoke", response_model=Card)
def revoke_card(card: str, store: Store, publisher: Publisher, _: Admin) -> Card:
    """Revoke a lost card: every door that knows it refuses it within seconds."""
    return cards.revoke_card(store, publisher, card).card
