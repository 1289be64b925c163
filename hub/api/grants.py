"""Grants: a plan, or some sites, given to a member (for a while, or for good)."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.http.deps import Admin, Publisher, Store
from hub.services import plans
from hub.services.plans import GrantIn

router = APIRouter(tags=["members"])


@router.post(
    "/members/{member}/grants", status_code=status.HTTP_201_CREATED, response_model=GrantIn
)
def add_grant(member: str, grant: GrantIn, store: Store, publisher: Publisher, _: Admin) -> GrantIn:
    return plans.add_grant(store, publisher, member, grant)
