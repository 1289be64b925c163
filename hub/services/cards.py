"""Members' cards: registered by UID (only a keyed hash is kept) and revoked when lost.

Revocation happens here and nowhere else: the card is marked revoked in the store, then every
site whose list holds its member gets that member's entry again, with the card revoked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, insert, select, update

from hafen.cards import InvalidUid, card_hash, parse_uid
from hub import db
from hub.access_compiler import member_reach
from hub.access_lists import AclPublisher, Published
from hub.services.errors import Conflict, Invalid, NotFound, Unavailable
from hub.services.members import require_member
from hub.services.publishing import publish_member


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: Annotated[str, Field(min_length=8, max_length=40)]


class Card(BaseModel):
    hash: str
    member: str
    revoked: bool


@dataclass(frozen=True)
class Revocation:
    """A revoked card, and the access-list messages that told its doors (none without a
    publisher)."""

    card: Card
    published: list[Published]


def add_card(
    engine: Engine,
    publisher: AclPublisher | None,
    card_key: bytes | None,
    member: str,
    card: CardIn,
) -> Card:
    """Register a card by its UID for ``member``; their sites learn it at once."""
    if card_key is None:
        raise Unavailable("the hub has no card key")
    try:
        digest = card_hash(card_key, parse_uid(card.uid))
    except InvalidUid as exc:
        raise Invalid(str(exc)) from None
    with engine.begin() as conn:
        require_member(conn, member)
        if conn.scalar(select(db.cards.c.hash).where(db.cards.c.hash == digest)) is not None:
            raise Conflict("this card is registered already")
        conn.execute(insert(db.cards).values(hash=digest, member_id=member, revoked=False))
        reach = member_reach(conn, member)
    publish_member(publisher, member, reach)
    return Card(hash=digest, member=member, revoked=False)


def revoke_card(engine: Engine, publisher: AclPublisher | None, card: str) -> Revocation:
    """Revoke a lost card (by its hash): every door that knows it refuses it within seconds."""
    with engine.begin() as conn:
        row = conn.execute(select(db.cards).where(db.cards.c.hash == card)).one_or_none()
        if row is None:
            raise NotFound("no such card")
        conn.execute(update(db.cards).where(db.cards.c.hash == card).values(revoked=True))
        reach = member_reach(conn, row.member_id)
    published = publish_member(publisher, row.member_id, reach)
    return Revocation(Card(hash=card, member=row.member_id, revoked=True), published)
