"""What an employer sees of their staff's use ("commuter harbours"), and the monthly statement
an operator invoices from: per person and in total, the days booked, the days used (verified
by taps at the door), the days booked but not used, and the sites — never the times at which
anyone entered (GDPR: the employer pays for days, it does not watch its staff).

Whose days count for a company: what it gave its staff, never their private use. A day used
is a visit the roll-ups recorded with the company as the member's company that day
(``visits.company``), so a member who leaves mid-month leaves with their days after leaving.
A day booked is a day with a desk or room booking the company's allowance paid for
(``bookings.company_id``: made by its admin, or by the member while on its staff) that was
not cancelled (a released booking, nobody came, was booked and is counted as unused); what a
member booked on their own plan, before they joined or after they left, is not the
company's. The people listed: the staff now, and whoever used or was booked on the company's
account in the month.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import Connection, Engine, select

from hub import db
from hub.auth import Principal, Role
from hub.reports import inert_cell, parse_month
from hub.services.errors import Invalid, NotFound
from hub.services.members import own_members
from hub.services.scope import Scope

#: What each column means, with the figures wherever they are shown.
DEFINITIONS = {
    "days booked": "local calendar days with a desk or room booking that was not cancelled",
    "days used": "days the person tapped in at a site of the network as the company's staff",
    "booked, not used": "days booked on which nobody tapped in (released or not)",
    "used, not booked": "days used without a booking (the company's standing access)",
}
CSV_COLUMNS = ("member", "name", "days_booked", "days_used", "booked_unused", "used_unbooked")


class PersonMonth(BaseModel):
    member: str
    name: str | None
    days_booked: int = 0
    days_used: int = 0
    booked_unused: int = 0
    used_unbooked: int = 0
    sites: list[str] = Field(default_factory=list)


class CompanyMonth(BaseModel):
    company: str
    name: str
    month: str
    people: list[PersonMonth]
    #: Only these sites' bookings and visits (an operator's statement); None: the network's.
    sites: list[str] | None = None
    definitions: dict[str, str] = Field(default_factory=lambda: dict(DEFINITIONS))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def totals(self) -> PersonMonth:
        total = PersonMonth(member="", name="total")
        for p in self.people:
            total.days_booked += p.days_booked
            total.days_used += p.days_used
            total.booked_unused += p.booked_unused
            total.used_unbooked += p.used_unbooked
        total.sites = sorted({s for p in self.people for s in p.sites})
        return total


def company_month(
    engine: Engine, company: str, month: str, sites: frozenset[str] | None = None
) -> CompanyMonth:
    """``company``'s use in ``month`` (``YYYY-MM``), per person (by id) and in total;
    ``sites``: only those sites' days (an operator sees their own sites' part)."""
    try:
        month = parse_month(month)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    first = date.fromisoformat(f"{month}-01")
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    with engine.connect() as conn:
        name = conn.scalar(select(db.companies.c.name).where(db.companies.c.id == company))
        if name is None:
            raise NotFound(f"no company {company!r}")
        used = _days_used(conn, company, month, sites)
        booked = _days_booked(conn, company, first, after, sites)
        staff = _staff(conn, company) | {member for member, _, _ in used | booked}
        names = dict(
            conn.execute(
                select(db.members.c.id, db.members.c.name).where(db.members.c.id.in_(staff))
            ).all()
        )
    people = []
    for member in sorted(staff):
        days_used = {(day, site) for m, day, site in used if m == member}
        days_booked = {(day, site) for m, day, site in booked if m == member}
        used_days, booked_days = {d for d, _ in days_used}, {d for d, _ in days_booked}
        people.append(
            PersonMonth(
                member=member,
                name=names.get(member),
                days_booked=len(booked_days),
                days_used=len(used_days),
                booked_unused=len(booked_days - used_days),
                used_unbooked=len(used_days - booked_days),
                sites=sorted({s for _, s in days_used | days_booked}),
            )
        )
    return CompanyMonth(
        company=company,
        name=name,
        month=month,
        people=people,
        sites=sorted(sites) if sites is not None else None,
    )


def this_month(engine: Engine, company: str) -> str:
    """The month now where ``company``'s sites are (the latest of their local months: in the
    first hours of a month in Berlin it is still the last one in UTC, not at the door)."""
    with engine.connect() as conn:
        sites = conn.scalar(select(db.companies.c.sites).where(db.companies.c.id == company))
        query = select(db.sites.c.timezone).where(db.sites.c.id.in_(sorted(sites or [])))
        zones = set(conn.scalars(query.distinct())) or {"UTC"}
    now = datetime.now(UTC)
    return max(now.astimezone(ZoneInfo(zone)).strftime("%Y-%m") for zone in zones)


def visible_month(engine: Engine, who: Principal, company: str, month: str) -> CompanyMonth:
    """``company``'s month as ``who`` may see it: its own company admin and network admins
    whole, a site operator their sites' part (what they invoice); another company answers as
    none at all, and technicians see no people."""
    if who.role == Role.COMPANY_ADMIN:
        if who.company_id != company:
            raise NotFound(f"no company {company!r}")
        return company_month(engine, company, month)
    scope = Scope(who)
    scope.require_people()
    statement = company_month(engine, company, month, scope.sites)
    if scope.sites is None:
        return statement
    # An operator's part: only the people who booked or came at their sites that month, and
    # by name only those whose own access reaches one of them (members.own_members); the rest
    # of the company's staff are none of their business.
    people = [p for p in statement.people if p.days_booked or p.days_used]
    with engine.connect() as conn:
        named = own_members(conn, scope, {p.member for p in people})
    statement.people = [
        p if p.member in named else p.model_copy(update={"name": None}) for p in people
    ]
    return statement


def _staff(conn: Connection, company: str) -> set[str]:
    return set(conn.scalars(select(db.members.c.id).where(db.members.c.company_id == company)))


def _days_used(
    conn: Connection, company: str, month: str, sites: frozenset[str] | None
) -> set[tuple[str, str, str]]:
    v = db.visits.c
    query = select(v.member, v.day, v.site).where(
        v.company == company, v.day.startswith(f"{month}-", autoescape=True)
    )
    if sites is not None:
        query = query.where(v.site.in_(sorted(sites)))
    return {(m, day, site) for m, day, site in conn.execute(query)}


def _days_booked(
    conn: Connection, company: str, first: date, after: date, sites: frozenset[str] | None
) -> set[tuple[str, str, str]]:
    b = db.bookings.c
    query = (
        select(b.member_id, b.day, b.site_id)
        .where(
            b.company_id == company,
            b.day >= first,
            b.day < after,
            b.cancelled_at.is_(None),
            b.kind.in_(("desk", "room", "day")),
        )
        .group_by(b.member_id, b.day, b.site_id)
    )
    if sites is not None:
        query = query.where(b.site_id.in_(sorted(sites)))
    return {(m, day.isoformat(), site) for m, day, site in conn.execute(query)}


def statement_csv(statement: CompanyMonth) -> str:
    """The statement as CSV: one row per person, then the total; the definitions follow as
    comment lines, so that whoever reads the file does not have to guess."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, "sites"])
    for p in [*statement.people, statement.totals]:
        figures = (p.days_booked, p.days_used, p.booked_unused, p.used_unbooked)
        writer.writerow(
            [inert_cell(p.member), inert_cell(p.name or ""), *figures, " ".join(p.sites)]
        )
    for term, meaning in DEFINITIONS.items():
        writer.writerow([f"# {term}: {meaning}"])
    return out.getvalue()
