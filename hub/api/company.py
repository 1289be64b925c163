"""A company admin's own company: its staff, their invitations and allowances. Every route
works on the signed-in admin's company alone: no route here takes a company id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hub.http.deps import CompanyAdmin, PublicUrl, Publisher, SendsMail, Store
from hub.services import staff
from hub.services.invitations import Links
from hub.services.staff import MAX_LISTED, Allowance, Removed, StaffAdded, StaffIn, StaffMember

router = APIRouter(prefix="/company", tags=["company"])


@router.get("/staff", response_model=list[StaffMember])
def list_staff(
    store: Store,
    who: CompanyAdmin,
    after: Annotated[str | None, Query(max_length=64, description="Page on: the last id.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> list[StaffMember]:
    """Your staff in id order: name, address, whether they signed in yet, their allowance."""
    return staff.list_staff(store, who, after, limit)


@router.get("/staff/{member}", response_model=StaffMember)
def get_staff(member: str, store: Store, who: CompanyAdmin) -> StaffMember:
    return staff.get_staff(store, who, member)


@router.post("/staff", response_model=StaffAdded, status_code=status.HTTP_201_CREATED)
def add_staff(
    body: StaffIn,
    response: Response,
    store: Store,
    publisher: Publisher,
    who: CompanyAdmin,
    base_url: PublicUrl,
    sends_mail: SendsMail,
) -> StaffAdded:
    """Put someone new on your staff and invite them (by mail when the hub sends mail, else
    the answer holds the link to hand over). Someone on your staff already gets a new
    invitation (200); an id that another member has is refused (409)."""
    added = staff.add_staff(store, publisher, who, body, Links(base_url, sends_mail))
    if not added.created:
        response.status_code = status.HTTP_200_OK
    return added


@router.delete("/staff/{member}", response_model=Removed)
def remove_staff(
    member: str, store: Store, publisher: Publisher, who: CompanyAdmin, sends_mail: SendsMail
) -> Removed:
    """Take someone off your staff: their access through your company ends at once, their
    allowance goes, and the bookings you made for them that have not ended are cancelled
    (their desks go to the waiting list), as are your waiting-list entries for them."""
    return staff.remove_staff(store, publisher, who, member, sends_mail=sends_mail)


@router.put("/staff/{member}/allowance", response_model=Allowance)
def set_allowance(member: str, body: Allowance, store: Store, who: CompanyAdmin) -> Allowance:
    """Set what one person may book: desk days a month (0 to 31) and sites (your company's
    own); null for either: your company's default."""
    return staff.set_allowance(store, who, member, body)
