"""What a member sees and does of their own: their profile, their cards (and reporting one
lost), their visits. Nothing here takes a member id from the request: every function works on
``who.member_id``, so another member's things are not reachable at all (a card id of someone
else's answers as one that does not exist).

A card is shown by a short id of its own, derived from its hash: never the UID, and never the
hash the doors' lists carry, so a member's list of cards links to nothing elsewhere.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine, or_, select

from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal, Role
from hub.services.cards import revoke_card
from hub.services.errors import Forbidden, NotFound
from hub.services.scope import Scope

#: Visits listed when the member names no range: the last quarter.
DEFAULT_VISIT_DAYS = 90
#: Visits listed at most per request.
MAX_VISITS = 500


class CompanyRef(BaseModel):
    id: str
    name: str


class Profile(BaseModel):
    id: str
    name: str
    email: str | None
    company: CompanyRef | None
    #: The plans that give them access: their own (not ended) and their company's.
    plans: list[str]


class MyCard(BaseModel):
    #: The card's short id here (not its hash, not its UID).
    id: str
    revoked: bool


class MyVisit(BaseModel):
    site: str
    site_name: str | None
    #: The site's time zone: the times are UTC, the day is the site's, and so is its clock.
    site_timezone: str = "UTC"
    day: date
    first_entry: datetime
    last_entry: datetime
    entries: int


def card_id(card_hash: str) -> str:
    """A card's public id for its member: 12 hex digits of a hash of its hash."""
    return hashlib.sha256(b"hafen card id:" + card_hash.encode()).hexdigest()[:12]


def _member_of(who: Principal) -> str:
    """The member asking (the HTTP side checked it too: this is the second wall)."""
    Scope(who).require_role(Role.MEMBER, Role.COMPANY_ADMIN)
    if who.member_id is None:
        raise Forbidden("your account is not a member's")
    return who.member_id


def profile(engine: Engine, who: Principal, now: datetime | None = None) -> Profile:
    member = _member_of(who)
    now = now or datetime.now(UTC)
    m, c, g = db.members.c, db.companies.c, db.grants.c
    with engine.connect() as conn:
        row = conn.execute(
            select(m.id, m.name, m.email, c.id.label("company"), c.name.label("company_name"))
            .select_from(db.members)
            .outerjoin(db.companies, c.id == m.company_id)
            .where(m.id == member)
        ).one_or_none()
        if row is None:  # erased while signed in
            raise NotFound("no such member")
        plans = set(
            conn.scalars(
                select(g.plan_id).where(
                    g.member_id == member,
                    g.plan_id.is_not(None),
                    or_(g.valid_until.is_(None), g.valid_until > now),
                )
            )
        )
        if row.company is not None:
            company_plan = conn.scalar(select(c.plan_id).where(c.id == row.company))
            plans |= {company_plan} if company_plan else set()
    company = CompanyRef(id=row.company, name=row.company_name) if row.company else None
    return Profile(
        id=row.id, name=row.name or row.id, email=row.email, company=company, plans=sorted(plans)
    )


def my_cards(engine: Engine, who: Principal) -> list[MyCard]:
    member = _member_of(who)
    k = db.cards.c
    with engine.connect() as conn:
        rows = conn.execute(select(k.hash, k.revoked).where(k.member_id == member)).all()
    return sorted((MyCard(id=card_id(r.hash), revoked=r.revoked) for r in rows), key=_by_id)


def _by_id(card: MyCard) -> str:
    return card.id


def report_lost(
    engine: Engine, publisher: AclPublisher | None, who: Principal, card: str
) -> MyCard:
    """Revoke one of the member's own cards at once: every door that knows it refuses it
    within seconds (hub.services.cards). Reporting it again changes nothing."""
    member = _member_of(who)
    k = db.cards.c
    with engine.connect() as conn:
        rows = conn.execute(select(k.hash, k.revoked).where(k.member_id == member)).all()
    found = next((r for r in rows if card_id(r.hash) == card), None)
    if found is None:
        raise NotFound("no such card")
    if not found.revoked:
        revoke_card(engine, publisher, found.hash)
    return MyCard(id=card, revoked=True)


def my_visits(
    engine: Engine,
    who: Principal,
    since: date | None = None,
    until: date | None = None,
    limit: int = 100,
) -> list[MyVisit]:
    """The member's own days at the network's sites, newest first, with their first and
    last entry (their own times: nobody else sees them here). Default: the last 90 days."""
    member = _member_of(who)
    until = until or datetime.now(UTC).date() + timedelta(days=1)  # a site ahead of UTC
    since = since or until - timedelta(days=DEFAULT_VISIT_DAYS)
    v, s = db.visits.c, db.sites.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(v.site, s.name, s.timezone, v.day, v.first_at, v.last_at, v.entries)
            .outerjoin(db.sites, s.id == v.site)
            .where(v.member == member, v.day >= since.isoformat(), v.day <= until.isoformat())
            .order_by(v.day.desc(), v.first_at.desc())
            .limit(min(limit, MAX_VISITS))
        ).all()
    return [
        MyVisit(
            site=r.site,
            site_name=r.name,
            site_timezone=r.timezone or "UTC",
            day=date.fromisoformat(r.day),
            first_entry=db.aware(r.first_at),
            last_entry=db.aware(r.last_at),
            entries=r.entries,
        )
        for r in rows
    ]
