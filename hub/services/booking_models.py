"""What booking is asked and what it answers: the bodies of the three ways to book (the
network's staff for anyone, a member for themselves, a company admin for their staff) and a
booking as it is read back.

What is booked:

- ``desk``: a desk at a site for a ``day`` and a ``part`` of it (day, morning, afternoon); its
  times come from the site's hours that day (``booking_rules``).
- ``room``: a ``room`` of the site from ``starts_at`` to ``ends_at`` on quarter hours, for
  ``attendees`` people (1 if not given).
- ``day``: an operator's day guest from ``starts_at`` to ``ends_at`` (staff only): takes a
  desk all day where the site counts desks.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Row

from hafen.ids import Slug
from hub import db
from hub.services.bounds import AwareInstant, Day
from hub.services.desk_pool import Part

#: The most people a room booking names (no room of a co-working space seats more).
MAX_ATTENDEES = 500
#: The longest a timed booking lasts: it lies within one of the site's days.
MAX_SPAN = timedelta(days=1)
Kind = Literal["desk", "room", "day"]
State = Literal["booked", "arrived", "cancelled", "released"]


class Wanted(BaseModel):
    """The fields of what is booked; which ones a kind takes is checked here, once."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    day: Day | None = None
    part: Part | None = None
    room: Slug | None = None
    #: In UTC once read (bounds.AwareInstant): SQLite keeps only the wall-clock fields.
    starts_at: AwareInstant | None = None
    ends_at: AwareInstant | None = None
    attendees: Annotated[int, Field(ge=1, le=MAX_ATTENDEES)] | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Wanted:
        if self.kind == "desk":
            if self.day is None:
                raise ValueError(
                    "a desk is booked for a day: give day (and part: day, morning or afternoon)"
                )
            if self.starts_at or self.ends_at or self.room or self.attendees:
                raise ValueError(
                    "a desk's times come from its part of the day and the site's hours: give"
                    " day and part, not starts_at, ends_at, room or attendees"
                )
            return self
        if self.day is not None or self.part is not None:
            raise ValueError(
                f"a {self.kind} booking is given by starts_at and ends_at, not day or part"
            )
        if self.starts_at is None or self.ends_at is None:
            raise ValueError(f"a {self.kind} booking needs starts_at and ends_at")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_SPAN:
            raise ValueError(
                "a booking lies within one of the site's days; for longer, give the member a plan"
            )
        if self.kind == "room" and self.room is None:
            raise ValueError("a room booking names its room")
        if self.kind == "day" and (self.room or self.attendees):
            raise ValueError("a day guest takes a desk: give no room or attendees")
        return self


class BookingIn(Wanted):
    """What the network's staff book: anything, for any member (operators at their sites)."""

    member: Slug
    #: An operator's day guest unless said otherwise (what the API booked before desks).
    kind: Kind = "day"


class MyBookingIn(Wanted):
    """What a member books for themselves: a desk or a room at a site."""

    site: Slug
    kind: Literal["desk", "room"] = "desk"


class StaffBookingIn(MyBookingIn):
    """What a company admin books for one of their company's staff."""

    member: Slug


class Booking(BaseModel):
    """A booking as made and read back."""

    id: int
    site: str
    member: str
    kind: Kind
    #: The site's local day it counts against.
    day: date | None = None
    part: Part | None = None
    room: str | None = None
    attendees: int | None = None
    starts_at: datetime
    ends_at: datetime
    cancelled: bool = False
    #: Given back to the pool: nobody tapped in by its start plus the site's grace time.
    released: bool = False
    #: booked; arrived (a tap at the site in its time: never when, which an employer must
    #: not see); cancelled; released (``released_at``).
    state: State = "booked"
    cancelled_at: datetime | None = None
    released_at: datetime | None = None


def as_booking(row: Row) -> Booking:
    """A stored booking (a ``db.bookings`` row)."""
    return Booking(
        id=row.id,
        site=row.site_id,
        member=row.member_id,
        kind=row.kind,
        day=row.day,
        part=row.part,
        room=row.room_id,
        attendees=row.attendees,
        starts_at=db.aware(row.starts_at),
        ends_at=db.aware(row.ends_at),
        cancelled=row.cancelled_at is not None,
        released=row.released_at is not None,
        state=state_of(row),
        cancelled_at=db.aware(row.cancelled_at),
        released_at=db.aware(row.released_at),
    )


def state_of(row: Row) -> State:
    """Where a stored booking stands: cancelled and released end it, a tap arrives at it."""
    if row.cancelled_at is not None:
        return "cancelled"
    if row.released_at is not None:
        return "released"
    return "arrived" if row.arrived_at is not None else "booked"
