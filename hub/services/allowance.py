"""What a member may book: at which sites, and how many desk days a month.

A member on a company's staff (``members.company_id``) has their employer's allowance: the
company's sites and ``days_per_person``, each replaced by their own ``allowances`` row where
it sets one (the company admin's per-person allowance; its sites narrow the company's, never
widen them: a site the company no longer books is not booked for it). Anyone else has their
plans': the plans of their grants (``source`` 'plan') valid at the booking's start; several
plans add up (the union of their sites, the sum of their days; one without a limit lifts
it). A member with neither may not book.

A desk day is a local day on which the member holds a desk (a morning or an afternoon counts
as a whole day; two halves of one day, even at two sites, count once). The days of a month
are counted over the bookings that still hold (not cancelled, not released) whose site's day
falls in that month. Room bookings count no days; they need an allowed site.

Members and company admins book within the allowance; the network's staff (admins, operators)
may book beyond it, for a guest or an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Row, bindparam, or_, select

from hub import db
from hub.services.booking_rules import Rule, refuse
from hub.services.desk_pool import DESK_KINDS, holding
from hub.services.wording import N_, Month, Words, words


@dataclass(frozen=True)
class Allowance:
    """Where and how much a member may book; ``granted_by`` names it in messages, ``company``
    is the employer whose allowance it is (None: the member's plans): what it books, that
    company paid for (``bookings.company_id``)."""

    sites: frozenset[str] | None  # None: the whole network
    days_per_month: int | None  # None: no limit
    granted_by: Words
    company: str | None = None

    def require_site(self, site: str) -> None:
        if self.sites is None or site in self.sites:
            return
        allowed = ", ".join(sorted(self.sites))
        if not allowed:
            text = N_("%(granted_by)s does not include %(site)s; it includes no site yet")
        else:
            text = N_("%(granted_by)s does not include %(site)s; it includes %(allowed)s")
        raise refuse(
            Rule.SITE_NOT_ALLOWED, text, granted_by=self.granted_by, site=site, allowed=allowed
        )


_m, _c, _a, _g, _p = db.members.c, db.companies.c, db.allowances.c, db.grants.c, db.plans.c
#: Built once (booking's hot path): what booking needs of a member, in one query.
_TERMS = (
    select(
        _m.blocked,
        _c.id.label("company"),
        _c.sites.label("company_sites"),
        _c.days_per_person,
        _a.sites.label("own_sites"),
        _a.days_per_month.label("own_days"),
    )
    .select_from(
        db.members.outerjoin(db.companies, _c.id == _m.company_id).outerjoin(
            db.allowances, _a.member_id == _m.id
        )
    )
    .where(_m.id == bindparam("member"))
)
#: The plans of a member's grants valid at an instant.
_PLANS = (
    select(_p.id, _p.sites, _p.days_per_month)
    .join(db.grants, _g.plan_id == _p.id)
    .where(
        _g.member_id == bindparam("member"),
        _g.source == "plan",
        or_(_g.valid_from.is_(None), _g.valid_from <= bindparam("at")),
        or_(_g.valid_until.is_(None), _g.valid_until > bindparam("at")),
    )
    .order_by(_p.id)
)


def member_terms(conn: Connection, member: str) -> Row | None:
    """What booking needs of a member: whether they are blocked, their company's allowance
    and their own over it (NULL where they have none). None: no such member."""
    return conn.execute(_TERMS, {"member": member}).one_or_none()


def allowance_of(conn: Connection, member: str, terms: Row, at: datetime) -> Allowance:
    """The member's allowance for a booking starting ``at`` (``terms``: their
    ``member_terms``); refused if they have none."""
    if terms.company is not None:
        sites = frozenset(terms.company_sites or [])
        if terms.own_sites is not None:
            sites &= frozenset(terms.own_sites)
        days = terms.own_days if terms.own_days is not None else terms.days_per_person
        return Allowance(
            sites, days, words(N_("%(company)s's allowance"), company=terms.company), terms.company
        )
    plans = conn.execute(_PLANS, {"member": member, "at": at}).all()
    if not plans:
        raise refuse(
            Rule.NO_BOOKING,
            N_(
                "the membership includes no booking (no plan, no employer); ask the network's"
                " management for a plan"
            ),
        )
    every_site = any(plan.sites is None for plan in plans)
    unlimited = any(plan.days_per_month is None for plan in plans)
    names = ", ".join(repr(plan.id) for plan in plans)
    return Allowance(
        None if every_site else frozenset(s for plan in plans for s in plan.sites),
        None if unlimited else sum(plan.days_per_month for plan in plans),
        words(
            N_("the plan %(names)s") if len(plans) == 1 else N_("the plans %(names)s"), names=names
        ),
    )


def month_of(day: date) -> tuple[date, date]:
    """The first day of ``day``'s month and of the next."""
    first = day.replace(day=1)
    if first.month == 12:
        return first, first.replace(year=first.year + 1, month=1)
    return first, first.replace(month=first.month + 1)


def desk_days(conn: Connection, member: str, first: date, following: date) -> set[date]:
    """The days in [first, following) on which the member holds a desk (at any site)."""
    b = db.bookings.c
    return set(
        conn.scalars(
            select(b.day)
            .distinct()
            .where(
                b.member_id == member,
                b.kind.in_(DESK_KINDS),
                b.day >= first,
                b.day < following,
                holding(),
            )
        )
    )


def require_day_left(
    conn: Connection, allowance: Allowance, member: str, day: date, subject: str
) -> None:
    """Refuse a desk on ``day`` once the month's desk days are used (a day already held
    costs nothing more). ``subject``: "you", or the member's id when someone books for them."""
    if allowance.days_per_month is None:
        return
    first, following = month_of(day)
    held = desk_days(conn, member, first, following)
    if day in held or len(held) < allowance.days_per_month:
        return
    days = allowance.days_per_month
    if subject == "you":
        used = N_("you have used %(days)s of %(days)s desk days of %(month)s")
        if days == 1:
            used = N_("you have used 1 of 1 desk day of %(month)s")
    else:
        used = N_("%(member)s has used %(days)s of %(days)s desk days of %(month)s")
        if days == 1:
            used = N_("%(member)s has used 1 of 1 desk day of %(month)s")
    raise refuse(
        Rule.DAYS_USED,
        N_(
            "%(used)s (%(granted_by)s; a half day counts as a day); book again from"
            " %(following)s or cancel another day"
        ),
        used=words(used, member=subject, days=days, month=Month(first)),
        granted_by=allowance.granted_by,
        following=following,
    )
