"""Companies ("commuter harbours"): an employer books access for its staff at chosen sites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select, update

from hub import db
from hub.access_compiler import member_reach
from hub.api.deps import Admin, Store
from hub.api.people import publish_member, publish_sites

router = APIRouter(tags=["companies"])
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class CompanyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    plan: Slug | None = None
    sites: list[Slug] = Field(default_factory=list)


class Employment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company: Slug | None


@router.put("/companies/{company}", response_model=CompanyIn)
def put_company(
    company: str, body: CompanyIn, request: Request, store: Store, _: Admin
) -> CompanyIn:
    """Create or change a company; its staff's access changes at the sites it (un)booked."""
    if body.id != company:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "id does not match the path")
    with store.begin() as conn:
        if (
            body.plan
            and conn.scalar(select(db.plans.c.id).where(db.plans.c.id == body.plan)) is None
        ):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no plan {body.plan!r}")
        old = conn.scalar(select(db.companies.c.sites).where(db.companies.c.id == company))
        values = {"name": body.name, "plan_id": body.plan, "sites": body.sites}
        if old is None and not conn.scalar(
            select(db.companies.c.id).where(db.companies.c.id == company)
        ):
            conn.execute(insert(db.companies).values(id=company, **values))
        else:
            conn.execute(update(db.companies).where(db.companies.c.id == company).values(**values))
    publish_sites(request, set(old or []) | set(body.sites))
    return body


@router.put("/members/{member}/company", response_model=Employment)
def employ(member: str, body: Employment, request: Request, store: Store, _: Admin) -> Employment:
    """Put a member on a company's staff (or take them off, with null)."""
    with store.begin() as conn:
        if conn.scalar(select(db.members.c.id).where(db.members.c.id == member)) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no member {member!r}")
        if (
            body.company
            and conn.scalar(select(db.companies.c.id).where(db.companies.c.id == body.company))
            is None
        ):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "no such company")
        before = member_reach(conn, member)
        conn.execute(
            update(db.members).where(db.members.c.id == member).values(company_id=body.company)
        )
        after = member_reach(conn, member)
    publish_member(request, member, before | after)
    return body
