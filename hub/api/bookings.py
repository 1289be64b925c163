"""Bookings and blocks: a desk or day booking lets a member in at one site for its time only;
cancelling takes it back; a block shuts a member out everywhere. Each goes to the doors at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator
from sqlalchemy import delete, insert, select, update

from hafen.ids import Slug
from hub import db
from hub.access_compiler import member_reach
from hub.api.deps import Admin, Caller, Store, require_site
from hub.api.people import publish_member
from hub.auth import Role

router = APIRouter(tags=["bookings"])
MAX_BOOKING = timedelta(days=31)


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: Slug
    kind: Literal["desk", "day"] = "day"
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _span(self) -> BookingIn:
        # UTC before the store: SQLite keeps only the wall-clock fields of any other offset.
        self.starts_at, self.ends_at = self.starts_at.astimezone(UTC), self.ends_at.astimezone(UTC)
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_BOOKING:
            raise ValueError("a booking lasts at most 31 days; give the member a plan instead")
        return self


class Booking(BookingIn):
    id: int
    site: str
    cancelled: bool = False


@router.post("/sites/{site}/bookings", response_model=Booking, status_code=status.HTTP_201_CREATED)
def book(site: str, booking: BookingIn, request: Request, store: Store, who: Caller) -> Booking:
    """Book a desk or a day: network admins anywhere, operators at their sites (day guests)."""
    if who.role == Role.TECHNICIAN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
    require_site(who, site)
    with store.begin() as conn:
        if conn.scalar(select(db.sites.c.id).where(db.sites.c.id == site)) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")
        member = db.members.c.id == booking.member
        if conn.scalar(select(db.members.c.id).where(member)) is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "no such member")
        booking_id = conn.execute(
            insert(db.bookings).values(
                member_id=booking.member,
                site_id=site,
                kind=booking.kind,
                starts_at=booking.starts_at,
                ends_at=booking.ends_at,
                created_at=datetime.now(UTC),
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(db.grants).values(
                member_id=booking.member,
                source="booking",
                booking_id=booking_id,
                sites=[site],
                valid_from=booking.starts_at,
                valid_until=booking.ends_at,
            )
        )
    publish_member(request, booking.member, {site})
    return Booking(id=booking_id, site=site, **booking.model_dump())


@router.delete("/bookings/{booking_id}", response_model=Booking)
def cancel(
    booking_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    store: Store,
    who: Caller,
) -> Booking:
    """Cancel a booking: the access it gave is taken back at its site."""
    with store.begin() as conn:
        row = conn.execute(select(db.bookings).where(db.bookings.c.id == booking_id)).one_or_none()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such booking")
        if who.role == Role.TECHNICIAN:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
        require_site(who, row.site_id)
        conn.execute(
            update(db.bookings)
            .where(db.bookings.c.id == booking_id)
            .values(cancelled_at=datetime.now(UTC))
        )
        conn.execute(delete(db.grants).where(db.grants.c.booking_id == booking_id))
    publish_member(request, row.member_id, {row.site_id})
    return Booking(
        id=row.id,
        site=row.site_id,
        member=row.member_id,
        kind=row.kind,
        starts_at=db.aware(row.starts_at),
        ends_at=db.aware(row.ends_at),
        cancelled=True,
    )


@router.post("/members/{member}/block", status_code=status.HTTP_204_NO_CONTENT)
def block(member: str, request: Request, store: Store, _: Admin) -> None:
    """Shut a member out of every door (unpaid, banned); their cards are kept."""
    _set_blocked(member, True, request, store)


@router.post("/members/{member}/unblock", status_code=status.HTTP_204_NO_CONTENT)
def unblock(member: str, request: Request, store: Store, _: Admin) -> None:
    _set_blocked(member, False, request, store)


def _set_blocked(member: str, blocked: bool, request: Request, store) -> None:
    with store.begin() as conn:
        changed = conn.execute(
            update(db.members).where(db.members.c.id == member).values(blocked=blocked)
        ).rowcount
        if not changed:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no member {member!r}")
        reach = member_reach(conn, member)
    publish_member(request, member, reach)
