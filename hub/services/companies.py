"""Companies ("commuter harbours"): an employer books access for its staff at chosen sites.

A company's plan reaches its staff at the sites it booked: changing the company changes every
staff member's access there, and putting a member on (or off) its staff changes theirs.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, Row, insert, select, update

from hafen.ids import Slug
from hub import db
from hub.access_changes import company_state
from hub.access_compiler import member_reach
from hub.access_lists import AclPublisher
from hub.services.errors import Invalid, NotFound
from hub.services.members import require_member
from hub.services.plans import DaysPerMonth
from hub.services.publishing import publish_company_change, publish_member
from hub.services.sites import require_sites


class CompanyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    plan: Slug | None = None
    sites: list[Slug] = Field(default_factory=list)
    #: Desk days a month each of its staff may book (a half day counts as a day), unless a
    #: person's own allowance says otherwise; None: no limit.
    days_per_person: DaysPerMonth | None = None


class Employment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company: Slug | None


def put_company(engine: Engine, publisher: AclPublisher | None, company: CompanyIn) -> CompanyIn:
    """Create or change a company; its staff's access changes at the sites it (un)booked."""
    c = db.companies.c
    with engine.begin() as conn:
        if (
            company.plan
            and conn.scalar(select(db.plans.c.id).where(db.plans.c.id == company.plan)) is None
        ):
            raise Invalid(f"no plan {company.plan!r}")
        require_sites(conn, company.sites)
        before = company_state(conn, company.id, lock=True)
        values = {
            "name": company.name,
            "plan_id": company.plan,
            "sites": company.sites,
            "days_per_person": company.days_per_person,
        }
        if before is None:
            conn.execute(insert(db.companies).values(id=company.id, **values))
        else:
            conn.execute(update(db.companies).where(c.id == company.id).values(**values))
    publish_company_change(publisher, company.id, before)
    return company


def list_companies(engine: Engine, after: str | None = None, limit: int = 100) -> list[CompanyIn]:
    """The network's companies in id order, from the one after ``after``."""
    c = db.companies.c
    query = select(db.companies).order_by(c.id).limit(limit)
    if after:
        query = query.where(c.id > after)
    with engine.connect() as conn:
        return [_company(row) for row in conn.execute(query)]


def get_company(engine: Engine, company: str) -> CompanyIn:
    with engine.connect() as conn:
        row = conn.execute(select(db.companies).where(db.companies.c.id == company)).one_or_none()
    if row is None:
        raise NotFound(f"no company {company!r}")
    return _company(row)


def _company(row: Row) -> CompanyIn:
    return CompanyIn(
        id=row.id,
        name=row.name,
        plan=row.plan_id,
        sites=row.sites or [],
        days_per_person=row.days_per_person,
    )


def employ(
    engine: Engine, publisher: AclPublisher | None, member: str, body: Employment
) -> Employment:
    """Put a member on a company's staff (or take them off, with None): their access changes
    at the sites they gain or lose."""
    with engine.begin() as conn:
        require_member(conn, member)
        if (
            body.company
            and conn.scalar(select(db.companies.c.id).where(db.companies.c.id == body.company))
            is None
        ):
            raise Invalid("no such company")
        before = member_reach(conn, member)
        conn.execute(
            update(db.members).where(db.members.c.id == member).values(company_id=body.company)
        )
        after = member_reach(conn, member)
    publish_member(publisher, member, before | after)
    return body
