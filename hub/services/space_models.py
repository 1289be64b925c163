"""What finding a space answers (hub.services.spaces): the question, and each space with its
figures, as the API documents them."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from hub.services.desk_pool import MIDDAY
from hub.services.places import MAX_QUERY
from hub.services.rooms import Room
from hub.services.usual import Usually

#: The most spaces one answer lists, and how far ahead a day may be asked for (any site's
#: horizon is at most this).
MAX_LIMIT, MAX_DAYS_AHEAD = 500, 730

DayStatus = Literal["open", "closed", "closed_day", "too_far_ahead", "not_bookable"]
#: What free now rests on: the sensors and the bookings, or the bookings alone.
FreeFrom = Literal["sensors", "bookings"]


class FreeDesks(BaseModel):
    """Desks free on a day; None for a part of the day when the site is shut."""

    day: int | None = Field(description="for the whole day (both halves open)")
    morning: int | None = Field(description=f"from opening until {MIDDAY:%H:%M}")
    afternoon: int | None = Field(description=f"from {MIDDAY:%H:%M} until closing")


class SpaceNow(BaseModel):
    """A space as it is now: what changes by the minute at most."""

    id: str
    name: str
    district: str | None
    address: str | None
    latitude: float | None
    longitude: float | None
    bookable: bool = Field(description="whether the site takes desk bookings (has desks)")
    desks: int | None
    open_now: bool
    free_now: int | None = Field(description="None when shut now or not bookable")
    free_now_from: FreeFrom | None = Field(
        description="sensors: the larger of the sensors' count and the desks booked for now"
        " and not yet claimed; bookings: the sensors are silent, only the bookings count"
    )
    usually_now: Usually | None = Field(description="at this hour on this weekday")
    rooms: list[Room]


class SpaceOnDay(BaseModel):
    """A space on the day asked for."""

    day: date
    day_status: DayStatus
    free_on_day: FreeDesks | None = Field(description="None unless day_status is open")
    usually_on_day: Usually | None = Field(
        description="at the fullest open hour of the day's weekday"
    )


class Space(SpaceNow, SpaceOnDay):
    """A space found: as it is now, on the day asked for, and how far away."""

    distance_km: float | None = Field(description="as the crow flies; None without a place")


class Place(BaseModel):
    name: str | None
    latitude: float
    longitude: float


class Spaces(BaseModel):
    place: Place | None = Field(description="where distances are from; None: none was given")
    spaces: list[Space]


class SpacesQuery(BaseModel):
    """What is asked: a place (coordinates, or ``near`` a postcode or town), a day (default:
    each site's today), at most ``limit`` spaces, only bookable ones."""

    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    near: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY)
    day: date | None = None
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    bookable: bool = False
