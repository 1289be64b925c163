"""Companies ("commuter harbours"): an employer books access for its staff at chosen sites."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

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
