"""The waiting list: a member waits for a desk at a site's day when none is left, and gets
the first that frees (told by mail when the hub sends mail); a company admin does the same
for their staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from hub.http.deps import CompanyAdmin, Member, Store
from hub.services import waiting_list
from hub.services.waiting_list import MAX_LISTED, StaffWaitingIn, Waiting, WaitingIn

router = APIRouter(tags=["waiting list"])
EntryId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=MAX_LISTED)]


@router.post("/me/waiting", response_model=Waiting, status_code=status.HTTP_201_CREATED)
def join(wanted: WaitingIn, store: Store, who: Member) -> Waiting:
    """Wait for a desk at ``site`` on ``day`` (for its ``part``: day, morning or afternoon)
    when none is left. Asked as a booking would be (the day, the site's hours, your
    allowance); while a desk is free the answer is 409: book it. When one frees, the first
    waiting whose part fits gets it: a booking, and a mail."""
    return waiting_list.join_own(store, who, wanted)


@router.get("/me/waiting", response_model=list[Waiting])
def list_own(store: Store, who: Member, limit: Limit = MAX_LISTED) -> list[Waiting]:
    """Your entries for days not over yet: where you stand in each line (``position`` 1:
    next), and how the others ended (booked, left, expired, refused with its reason)."""
    return waiting_list.list_own(store, who, limit=limit)


@router.delete("/me/waiting/{entry_id}", response_model=Waiting)
def leave(entry_id: EntryId, store: Store, who: Member) -> Waiting:
    """Leave a waiting list."""
    return waiting_list.leave_own(store, who, entry_id)


@router.post("/company/waiting", response_model=Waiting, status_code=status.HTTP_201_CREATED)
def join_for_staff(wanted: StaffWaitingIn, store: Store, who: CompanyAdmin) -> Waiting:
    """Put one of your staff (``member``) on a waiting list, within their allowance."""
    return waiting_list.join_for_staff(store, who, wanted)


@router.get("/company/waiting", response_model=list[Waiting])
def list_for_company(store: Store, who: CompanyAdmin, limit: Limit = MAX_LISTED) -> list[Waiting]:
    """The entries you put your staff on, for days not over yet (never their own)."""
    return waiting_list.list_for_company(store, who, limit=limit)


@router.delete("/company/waiting/{entry_id}", response_model=Waiting)
def leave_for_staff(entry_id: EntryId, store: Store, who: CompanyAdmin) -> Waiting:
    """Take one of your staff off a waiting list you put them on."""
    return waiting_list.leave_for_staff(store, who, entry_id)
