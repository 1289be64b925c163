"""Plans, members and their cards and grants: every change that affects who may enter is sent
to the affected sites' doors at once (as a signed access-list delta)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.encoders import jsonable_encoder
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from hafen.acl import Plan as AclPlan
from hafen.acl import TimeWindow
from hafen.cards import InvalidUid, card_hash, parse_uid
from hafen.ids import Slug
from hub import db
from hub.access_compiler import member_reach
from hub.api.deps import Admin, Store

log = logging.getLogger(__name__)
router = APIRouter(tags=["members"])


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    sites: list[Slug] | None = None
    windows: list[TimeWindow] | None = None


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)] | None = None
    blocked: bool = False


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: Annotated[str, Field(min_length=8, max_length=40)]


class Card(BaseModel):
    hash: str
    member: str
    revoked: bool


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Slug | None = None
    sites: list[Slug] | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _scope(self) -> GrantIn:
        # UTC before the store: SQLite keeps only the wall-clock fields of any other offset.
        for name in ("valid_from", "valid_until"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).astimezone(UTC))
        if self.plan is None and self.sites is None:
            raise ValueError("a grant without a plan names its sites")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


def publish_sites(request: Request, sites: set[str]) -> None:
    """Send the changed lists of ``sites`` (no-op for a site whose list did not change)."""
    publisher = request.app.state.publisher
    if publisher is None:
        log.warning("no broker configured: %d sites' lists not sent", len(sites))
        return
    if sites:
        publisher.publish_sites(sites)


def publish_member(
    request: Request, member: str, sites: set[str], forgotten_cards: set[str] | None = None
) -> None:
    """Send ``member``'s new entry (or removal) to ``sites`` as small deltas, no recompile."""
    publisher = request.app.state.publisher
    if publisher is None:
        log.warning("no broker configured: %d sites' lists not sent", len(sites))
        return
    if sites:
        publisher.publish_member(member, sites, forgotten_cards or set())


@router.post("/plans", response_model=PlanIn, status_code=status.HTTP_201_CREATED)
def create_plan(plan: PlanIn, store: Store, _: Admin) -> PlanIn:
    try:
        with store.begin() as conn:
            conn.execute(insert(db.plans).values(**plan.model_dump(mode="json")))
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"plan {plan.id!r} exists") from None
    return plan


def plan_sites(conn: Connection, scope: list[str] | None) -> set[str]:
    all_sites = set(conn.scalars(select(db.sites.c.id)))
    return all_sites if scope is None else set(scope) & all_sites


@router.put("/plans/{plan}", response_model=PlanIn)
def change_plan(plan: str, body: PlanIn, request: Request, store: Store, _: Admin) -> PlanIn:
    """Change a plan's sites or hours; every site it reached or reaches gets its new list."""
    if body.id != plan:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "id does not match the path")
    with store.begin() as conn:
        old = conn.execute(select(db.plans).where(db.plans.c.id == plan)).one_or_none()
        if old is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no plan {plan!r}")
        values = body.model_dump(mode="json", exclude={"id"})
        conn.execute(update(db.plans).where(db.plans.c.id == plan).values(**values))
        reach = plan_sites(conn, old.sites) | plan_sites(conn, body.sites)
    publisher = request.app.state.publisher
    if publisher is not None and old.sites == values["sites"]:
        # Same sites, new hours: the same members; each site needs only the plan's new row.
        publisher.publish_plan(AclPlan.model_validate(body.model_dump(mode="json")), reach)
    else:
        publish_sites(request, reach)
    return body


@router.post("/members", response_model=MemberIn, status_code=status.HTTP_201_CREATED)
def create_member(member: MemberIn, store: Store, _: Admin) -> MemberIn:
    try:
        with store.begin() as conn:
            conn.execute(
                insert(db.members).values(**member.model_dump(), created_at=datetime.now(UTC))
            )
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"member {member.id!r} exists") from None
    return member


def _existing_member(conn: Connection, member: str) -> None:
    if conn.scalar(select(db.members.c.id).where(db.members.c.id == member)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no member {member!r}")


@router.post(
    "/members/{member}/grants", status_code=status.HTTP_201_CREATED, response_model=GrantIn
)
def add_grant(member: str, grant: GrantIn, request: Request, store: Store, _: Admin) -> GrantIn:
    with store.begin() as conn:
        _existing_member(conn, member)
        if (
            grant.plan
            and conn.scalar(select(db.plans.c.id).where(db.plans.c.id == grant.plan)) is None
        ):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no plan {grant.plan!r}")
        conn.execute(
            insert(db.grants).values(
                member_id=member,
                source="plan",
                plan_id=grant.plan,
                sites=grant.sites,
                valid_from=grant.valid_from,
                valid_until=grant.valid_until,
            )
        )
        reach = member_reach(conn, member)
    publish_member(request, member, reach)
    return grant


@router.post("/members/{member}/cards", response_model=Card, status_code=status.HTTP_201_CREATED)
def add_card(member: str, card: CardIn, request: Request, store: Store, _: Admin) -> Card:
    """Register a card by its UID; only its keyed hash is kept (and returned)."""
    if request.app.state.card_key is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the hub has no card key")
    try:
        digest = card_hash(request.app.state.card_key, parse_uid(card.uid))
    except InvalidUid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    with store.begin() as conn:
        _existing_member(conn, member)
        if conn.scalar(select(db.cards.c.hash).where(db.cards.c.hash == digest)) is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, "this card is registered already")
        conn.execute(insert(db.cards).values(hash=digest, member_id=member, revoked=False))
        reach = member_reach(conn, member)
    publish_member(request, member, reach)
    return Card(hash=digest, member=member, revoked=False)


@router.post("/cards/{card}/revoke", response_model=Card)
def revoke_card(card: str, request: Request, store: Store, _: Admin) -> Card:
    """Revoke a lost card: every door that knows it refuses it within seconds."""
    with store.begin() as conn:
        row = conn.execute(select(db.cards).where(db.cards.c.hash == card)).one_or_none()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such card")
        conn.execute(update(db.cards).where(db.cards.c.hash == card).values(revoked=True))
        reach = member_reach(conn, row.member_id)
    publish_member(request, row.member_id, reach)
    return Card(hash=card, member=row.member_id, revoked=True)


@router.get("/members/{member}/export", tags=["privacy"])
def export(member: str, store: Store, _: Admin) -> dict:
    """Everything the hub holds about a member (GDPR access request), as JSON."""
    from hub.privacy import export_member

    data = export_member(store, member)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no member {member!r}")
    return jsonable_encoder(data, custom_encoder={bytes: bytes.hex})


@router.delete("/members/{member}", status_code=status.HTTP_204_NO_CONTENT, tags=["privacy"])
def erase(member: str, request: Request, store: Store, _: Admin) -> None:
    """Erase a member (GDPR): their doors forget them at once, their events keep only a
    pseudonym, everything else about them is deleted."""
    from hub.privacy import erase_member

    with store.connect() as conn:
        reach = member_reach(conn, member)
        cards = set(conn.scalars(select(db.cards.c.hash).where(db.cards.c.member_id == member)))
    if not erase_member(store, member):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no member {member!r}")
    publish_member(request, member, reach, forgotten_cards=cards)


class MemberOut(MemberIn):
    company: str | None = None


@router.get("/members", response_model=list[MemberOut])
def search_members(
    store: Store,
    _: Admin,
    q: Annotated[
        str | None, Query(max_length=100, description="Part of id, name or email.")
    ] = None,
    after: Annotated[str | None, Query(max_length=64, description="Page on: the last id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[MemberOut]:
    """Find members by part of their id, name or email (case-insensitive), in id order."""
    m = db.members.c
    query = select(db.members).order_by(m.id).limit(limit)
    if q:
        # ILIKE: trigram indexes on PostgreSQL; lower() LIKE lower() on SQLite.
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                m.id.ilike(pattern, escape="\\"),
                m.name.ilike(pattern, escape="\\"),
                m.email.ilike(pattern, escape="\\"),
            )
        )
    if after:
        query = query.where(m.id > after)
    with store.connect() as conn:
        rows = conn.execute(query).all()
    return [
        MemberOut(
            id=r.id, name=r.name or r.id, email=r.email, blocked=r.blocked, company=r.company_id
        )
        for r in rows
    ]
