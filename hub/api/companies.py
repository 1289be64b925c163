"""Companies ("commuter harbours"): an employer books access for its staff at chosen sites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from hub.http.deps import Admin, Publisher, Store
from hub.services import companies
from hub.services.companies import CompanyIn, Employment

router = APIRouter(tags=["companies"])


@router.put("/companies/{company}", response_model=CompanyIn)
def put_company(
    company: str, body: CompanyIn, store: Store, publisher: Publisher, _: Admin
) -> CompanyIn:
    """Create or change a company; its staff's access changes at the sites it (un)booked."""
    if body.id != company:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "id does not match the path")
    return companies.put_company(store, publisher, body)


@router.put("/members/{member}/company", response_model=Employment)
def employ(
    member: str, body: Employment, store: Store, publisher: Publisher, _: Admin
) -> Employment:
    """Put a member on a company's staff (or take them off, with null)."""
    return companies.employ(store, publisher, member, body)


@router.get("/companies", response_model=list[CompanyIn])
def list_companies(
    store: Store,
    _: Admin,
    after: Annotated[str | None, Query(max_length=64, description="Page on: the last id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CompanyIn]:
    """The network's companies, in id order."""
    return companies.list_companies(store, after, limit)


@router.get("/companies/{company}", response_model=CompanyIn)
def get_company(company: str, store: Store, _: Admin) -> CompanyIn:
    return companies.get_company(store, company)
