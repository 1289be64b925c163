"""A site's day as its operator sees it: who visited (from the doors' decisions) and which day
guests are booked. Days are calendar days in the site's own time zone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.http.deps import Caller, Store
from hub.services import booking_reads, visits as site_visits
from hub.services.booking_reads import DayGuest
from hub.services.bounds import Day as CalendarDay
from hub.services.visits import Visit

router = APIRouter(tags=["operators"])
Day = Annotated[
    CalendarDay | None, Query(description="A day in the site's time zone; default today.")
]


@router.get("/sites/{site}/visits", response_model=list[Visit])
def visits(site: str, store: Store, who: Caller, day: Day = None) -> list[Visit]:
    """Who came in on a day: each member's first and last entry and how many times the door
    let them in (after retention, members appear only by pseudonym and without a name).

    Read from the visits roll-up that ingest keeps (hub/rollups.py), as the reports are.
    """
    return site_visits.visits(store, who, site, day)


@router.get("/sites/{site}/bookings", response_model=list[DayGuest])
def day_guests(
    site: str, store: Store, who: Caller, day: Day = None, cancelled: bool = False
) -> list[DayGuest]:
    """The bookings that overlap a day at the site: day guests and desk bookings."""
    return booking_reads.day_guests(store, who, site, day, cancelled)
