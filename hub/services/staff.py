"""An employer's staff, as its company admin manages them ("commuter harbours"): the list,
inviting someone onto it, taking someone off it, and each person's allowance.

A company admin reaches only their own company (``who.company_id``): a member of another
company, or of none, answers as one that does not exist. What they see of their staff is
what an employer needs to run the list (name, address, whether the person has signed in
yet, the allowance), never where or when anyone entered.

Taking someone off the staff ends what the company gave them at once: their access through
the company (every door that held it gets their new entry), their allowance, every booking
the company's allowance paid for that has not ended yet, whoever made it (its grant goes, its
desk goes to the waiting list, its member is told by mail) and the company's waiting-list
entries for them. What the member booked or waits for on their own (a plan) stays theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from hafen.ids import Slug
from hub import db
from hub.access_compiler import member_reach
from hub.access_lists import AclPublisher
from hub.auth import UNUSABLE_PASSWORD, Principal, Role
from hub.services.booking_mail import Because
from hub.services.booking_writes import writing
from hub.services.desk_pool import holding
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from hub.services.freeing import cancel_all, tell_members
from hub.services.invitations import InvitationOut, Links, invite_member_in
from hub.services.mail import EMAIL_PATTERN
from hub.services.publishing import publish_member
from hub.services.scope import Scope
from hub.services.waiting_offers import Outcome, end_entry

#: Staff listed at most per request.
MAX_LISTED = 500
#: Sites an allowance names at most (a network has a few hundred).
MAX_SITES = 1000


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]


class Allowance(BaseModel):
    """What the company allows one person, over its own defaults: desk days a month (None:
    the company's) and sites (None: all of the company's)."""

    model_config = ConfigDict(extra="forbid")

    days_per_month: Annotated[int, Field(ge=0, le=31)] | None = None
    sites: Annotated[list[Slug], Field(max_length=MAX_SITES)] | None = None


class StaffMember(BaseModel):
    id: str
    name: str
    email: str | None
    #: none: never invited; invited: has not set a password yet; active; disabled.
    account: Literal["none", "invited", "active", "disabled"]
    #: Their own allowance; None: the company's defaults.
    allowance: Allowance | None


class StaffAdded(StaffMember):
    invitation: InvitationOut
    #: False: they were on the staff already and got a new invitation.
    created: bool


class Removed(BaseModel):
    member: str
    #: Bookings the company's allowance paid for that had not ended, now cancelled.
    cancelled_bookings: int


def _company_of(who: Principal) -> str:
    """The company asking (the HTTP side checked it too: this is the second wall)."""
    Scope(who).require_role(Role.COMPANY_ADMIN)
    if who.company_id is None:
        raise Forbidden("your account looks after no company")
    return who.company_id


def _own(conn: Connection, company: str, member: str) -> Row:
    """The member row, if on ``company``'s staff; NotFound for anyone else."""
    row = conn.execute(select(db.members).where(db.members.c.id == member)).one_or_none()
    if row is None or row.company_id != company:
        raise NotFound(f"no member {member!r} on your staff")
    return row


def list_staff(
    engine: Engine, who: Principal, after: str | None = None, limit: int = 100
) -> list[StaffMember]:
    """The company's staff in id order, from the one after ``after``."""
    company = _company_of(who)
    m = db.members.c
    query = select(db.members).where(m.company_id == company).order_by(m.id)
    if after:
        query = query.where(m.id > after)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(min(limit, MAX_LISTED))).all()
        return _described(conn, rows)


def get_staff(engine: Engine, who: Principal, member: str) -> StaffMember:
    company = _company_of(who)
    with engine.connect() as conn:
        return _described(conn, [_own(conn, company, member)])[0]


def add_staff(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    body: StaffIn,
    links: Links,
    now: datetime | None = None,
) -> StaffAdded:
    """Put a new member on the company's staff and invite them (in one transaction: no
    member without an invitation, no mail for a member who was not made). Someone on the
    staff already gets a new invitation; any other existing member id is refused (409): a
    network admin puts an existing member on a company's staff."""
    company = _company_of(who)
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        if conn.scalar(select(db.companies.c.id).where(db.companies.c.id == company)) is None:
            raise NotFound("your company is no longer in the network")
        existing = conn.execute(select(db.members).where(db.members.c.id == body.id)).one_or_none()
        if existing is not None and existing.company_id != company:
            raise Conflict(
                f"there is a member {body.id!r} already: choose another id, or ask the"
                " network's admins to put that member on your staff"
            )
        created = existing is None
        if created:
            conn.execute(
                insert(db.members).values(
                    id=body.id,
                    name=body.name,
                    email=body.email,
                    company_id=company,
                    blocked=False,
                    created_at=now,
                )
            )
        invitation = invite_member_in(conn, body.id, who.username, links, now)
        reach = member_reach(conn, body.id)
        [described] = _described(conn, [_own(conn, company, body.id)])
    if created:
        publish_member(publisher, body.id, reach)
    return StaffAdded(**described.model_dump(), invitation=invitation, created=created)


def remove_staff(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    member: str,
    now: datetime | None = None,
    *,
    sends_mail: bool = False,
) -> Removed:
    """Take ``member`` off the company's staff (see the module); they stay a member of the
    network, with whatever access of their own they have. The bookings the company paid for
    are cancelled the one way bookings are (``freeing``): each freed desk goes to the
    waiting list in the same transaction; the waiting entries the company made for them end.
    ``sends_mail``: the hub sends mail (the member is told of each cancelled booking, those
    who get a desk that it freed are told too)."""
    company = _company_of(who)
    now = now or datetime.now(UTC)
    b, w = db.bookings.c, db.waiting_list.c
    # The member's row is written first, then each booking's pool: the order of every
    # booking transaction (booking_writes), and SQLite's write lock from the first write on.
    with writing(engine), engine.begin() as conn:
        _own(conn, company, member)
        before = member_reach(conn, member)
        conn.execute(update(db.members).where(db.members.c.id == member).values(company_id=None))
        conn.execute(delete(db.allowances).where(db.allowances.c.member_id == member))
        bookings = conn.execute(
            select(db.bookings).where(
                b.member_id == member, b.company_id == company, b.ends_at > now, holding()
            )
        ).all()
        because = Because(
            f"Sie gehören nicht mehr zu den Beschäftigten von {company}, deren Kontingent"
            " die Buchung bezahlt hat.",
            f"you are no longer on the staff of {company}, whose allowance paid for it.",
        )
        freed = cancel_all(conn, bookings, now, sends_mail, because)
        waiting = conn.scalars(
            select(w.id).where(w.member_id == member, w.company_id == company, w.ended_at.is_(None))
        ).all()
        for entry in waiting:
            end_entry(conn, entry, Outcome.REFUSED, now, f"you are no longer on {company}'s staff")
        after = member_reach(conn, member)
    publish_member(publisher, member, before | after | {row.site_id for row in bookings})
    tell_members(publisher, [given for one in freed for given in one.given])
    return Removed(member=member, cancelled_bookings=sum(one.changed for one in freed))


def set_allowance(
    engine: Engine, who: Principal, member: str, allowance: Allowance, now: datetime | None = None
) -> Allowance:
    """Set one person's allowance; its sites must be the company's own. Both None: back to
    the company's defaults."""
    company = _company_of(who)
    a = db.allowances.c
    with engine.begin() as conn:
        _own(conn, company, member)
        if allowance.sites is not None:
            offered = conn.scalar(select(db.companies.c.sites).where(db.companies.c.id == company))
            _check_sites(allowance.sites, set(offered or []))
        conn.execute(delete(db.allowances).where(a.member_id == member))
        if allowance.days_per_month is not None or allowance.sites is not None:
            conn.execute(
                insert(db.allowances).values(
                    member_id=member,
                    days_per_month=allowance.days_per_month,
                    sites=sorted(set(allowance.sites)) if allowance.sites is not None else None,
                    updated_at=now or datetime.now(UTC),
                )
            )
    sites = sorted(set(allowance.sites)) if allowance.sites is not None else None
    return Allowance(days_per_month=allowance.days_per_month, sites=sites)


def _check_sites(sites: list[str], offered: set[str]) -> None:
    """Invalid (422) for the first site the company does not book, naming what it does."""
    for site in sites:
        if site not in offered:
            own = ", ".join(sorted(offered)) or "none yet"
            raise Invalid(f"sites: {site!r} is not one of your company's sites ({own})")


def _described(conn: Connection, rows: Sequence[Row]) -> list[StaffMember]:
    """Staff rows with their account's state and allowance, in two queries."""
    ids = [row.id for row in rows]
    u, a = db.users.c, db.allowances.c
    accounts = {
        r.member_id: r
        for r in conn.execute(
            select(u.member_id, u.password_hash, u.disabled).where(u.member_id.in_(ids))
        )
    }
    allowances = {
        r.member_id: Allowance(days_per_month=r.days_per_month, sites=r.sites)
        for r in conn.execute(select(db.allowances).where(a.member_id.in_(ids)))
    }
    return [
        StaffMember(
            id=row.id,
            name=row.name or row.id,
            email=row.email,
            account=_account(accounts.get(row.id)),
            allowance=allowances.get(row.id),
        )
        for row in rows
    ]


def _account(user: Row | None) -> Literal["none", "invited", "active", "disabled"]:
    if user is None:
        return "none"
    if user.disabled:
        return "disabled"
    return "invited" if user.password_hash == UNUSABLE_PASSWORD else "active"
