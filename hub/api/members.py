"""Members: added and found; under GDPR exported or erased."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.encoders import jsonable_encoder

from hub.http.deps import Admin, Principals, Publisher, Store
from hub.services import members
from hub.services.members import MemberIn, MemberOut

router = APIRouter(prefix="/members", tags=["members"])


@router.post("", response_model=MemberIn, status_code=status.HTTP_201_CREATED)
def create_member(member: MemberIn, store: Store, _: Admin) -> MemberIn:
    return members.create_member(store, member)


@router.get("", response_model=list[MemberOut])
def search_members(
    store: Store,
    _: Admin,
    q: Annotated[
        str | None, Query(max_length=100, description="Part of id, name or email.")
    ] = None,
    after: Annotated[str | None, Query(max_length=64, description="Page on: the last id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[MemberOut]:
    """Find members by part of their id, name or email (case-insensitive), in id order."""
    return members.search_members(store, q, after, limit)


@router.get("/{member}", response_model=MemberOut)
def get_member(member: str, store: Store, _: Admin) -> MemberOut:
    return members.get_member(store, member)


@router.get("/{member}/export", tags=["privacy"])
def export(member: str, store: Store, _: Admin) -> dict[str, Any]:
    """Everything the hub holds about a member (GDPR access request), as JSON."""
    data = members.export_member(store, member)
    return jsonable_encoder(data, custom_encoder={bytes: bytes.hex})


@router.delete("/{member}", status_code=status.HTTP_204_NO_CONTENT, tags=["privacy"])
def erase(
    member: str, store: Store, publisher: Publisher, principals: Principals, _: Admin
) -> None:
    """Erase a member (GDPR): their doors forget them at once, their events keep only a
    pseudonym, everything else about them is deleted, their sign-in and sessions too."""
    members.erase_member(store, publisher, member)
    principals.clear()  # their sessions end now, not when a resolved token expires
