"""Members: added, found, blocked and unblocked; and under GDPR exported or erased."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from hafen.ids import Slug
from hub import db, privacy
from hub.access_compiler import member_reach
from hub.access_lists import AclPublisher
from hub.services.errors import Conflict, NotFound
from hub.services.publishing import publish_member
from hub.services.scope import Scope


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)] | None = None
    blocked: bool = False


class MemberOut(MemberIn):
    company: str | None = None


def own_members(conn: Connection, scope: Scope, members: Iterable[str]) -> set[str]:
    """Those of ``members`` whom ``scope`` may know by name: every one for those who see
    every site; for a site operator, only members of their sites, whose own access (a plan,
    a grant of sites, their company) reaches one of them. A member who comes only as a day
    guest (a booking) belongs to another site: the operator knows them by id, what the door
    needs, and never learns their name or e-mail from the guest list, visits or events."""
    wanted = set(members)
    sites = scope.sites
    if sites is None or not wanted:
        return wanted
    if not sites:
        return set()
    g, c, m = db.grants.c, db.companies.c, db.members.c
    plans = {p.id: p.sites for p in conn.execute(select(db.plans.c.id, db.plans.c.sites))}
    own: set[str] = set()
    for grant in conn.execute(
        select(g.member_id, g.plan_id, g.sites).where(
            g.member_id.in_(sorted(wanted)), g.source != "booking"
        )
    ):
        if grant.plan_id is not None and grant.plan_id not in plans:
            continue  # a grant of a missing plan reaches nowhere (the compiler's rule)
        reach = grant.sites if grant.sites is not None else plans.get(grant.plan_id)
        if reach is None or sites.intersection(reach):  # None: the whole network
            own.add(grant.member_id)
    for member, company_sites in conn.execute(
        select(m.id, c.sites)
        .join(db.companies, c.id == m.company_id)
        .where(m.id.in_(sorted(wanted - own)))
    ):
        if sites.intersection(company_sites or []):
            own.add(member)
    return own


def require_member(conn: Connection, member: str) -> None:
    if conn.scalar(select(db.members.c.id).where(db.members.c.id == member)) is None:
        raise NotFound(f"no member {member!r}")


def create_member(engine: Engine, member: MemberIn) -> MemberIn:
    """A new member, with no access yet (a grant, a booking or a company gives it)."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(db.members).values(**member.model_dump(), created_at=datetime.now(UTC))
            )
    except IntegrityError:
        raise Conflict(f"member {member.id!r} exists") from None
    return member


def get_member(engine: Engine, member: str) -> MemberOut:
    with engine.connect() as conn:
        r = conn.execute(select(db.members).where(db.members.c.id == member)).one_or_none()
    if r is None:
        raise NotFound(f"no member {member!r}")
    return _member(r)


def _member(r: Row) -> MemberOut:
    return MemberOut(
        id=r.id, name=r.name or r.id, email=r.email, blocked=r.blocked, company=r.company_id
    )


def search_members(
    engine: Engine, q: str | None = None, after: str | None = None, limit: int = 50
) -> list[MemberOut]:
    """Members whose id, name or email holds ``q`` (case-insensitive), in id order, from the
    one after ``after``."""
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
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_member(r) for r in rows]


def set_blocked(engine: Engine, publisher: AclPublisher | None, member: str, blocked: bool) -> None:
    """Shut a member out of every door (unpaid, banned) or let them in again; their cards,
    grants and bookings are kept."""
    with engine.begin() as conn:
        changed = conn.execute(
            update(db.members).where(db.members.c.id == member).values(blocked=blocked)
        ).rowcount
        if not changed:
            raise NotFound(f"no member {member!r}")
        reach = member_reach(conn, member)
    publish_member(publisher, member, reach)


def export_member(engine: Engine, member: str) -> dict[str, Any]:
    """Everything the hub holds about a member (GDPR access request), JSON-ready but for
    bytes, which the caller encodes as it likes."""
    data = privacy.export_member(engine, member)
    if data is None:
        raise NotFound(f"no member {member!r}")
    return data


def erase_member(engine: Engine, publisher: AclPublisher | None, member: str) -> None:
    """Erase a member (GDPR): their doors forget them and their cards at once, their events
    keep only a pseudonym, everything else about them is deleted."""
    with engine.connect() as conn:
        reach = member_reach(conn, member)
        cards = set(conn.scalars(select(db.cards.c.hash).where(db.cards.c.member_id == member)))
    if not privacy.erase_member(engine, member):
        raise NotFound(f"no member {member!r}")
    publish_member(publisher, member, reach, forgotten_cards=cards)
