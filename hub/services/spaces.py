"""Finding a space: the network's sites by distance from a place, each with its free desks now
and on a chosen day, whether it is open, and how full it usually is.

Anyone signed in may ask (a member looking for a desk near home); the answer holds nothing
about anyone: no headcount, only desks free.

**Free now** is ``desks - max(people the sensors count, desks booked for now whose member has
not tapped in yet)``, never below 0: the sensors see who is there, booked or not; a booking
not yet claimed holds its desk though its member is still on the way. The sensors' count is
the upper end of its 90 % interval where the doors send one (what may be promised, as the
live overview's ``free_at_least``), and counts only while fresh (``HOLD``, as there): from a
site whose sensors are silent, free now rests on the bookings alone, and says so.

**Free on a day** is the desks less those the day's bookings take (hub.services.desk_pool),
for the whole day, the morning and the afternoon, where the site's hours open that part.

What a request costs: a sort of the sites by distance, and for a day other than today one
grouped query over the sites asked for; the sites, the figures of now (three grouped queries
a second at most) and the usual hints are kept in memory (hub.services.space_cache).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Engine

from hub.services.desk_pool import MIDDAY, Part, Taken
from hub.services.errors import Invalid
from hub.services.places import MAX_QUERY, fold
from hub.services.rooms import Room
from hub.services.sites import Site
from hub.services.space_cache import Directory, Entry, FreeFrom, SpaceFinder, taken_on
from hub.services.usual import Usually

#: The most spaces one answer lists, and how far ahead a day may be asked for (any site's
#: horizon is at most this).
MAX_LIMIT, MAX_DAYS_AHEAD = 500, 730
EARTH_RADIUS_KM = 6371.0088

DayStatus = Literal["open", "closed", "closed_day", "too_far_ahead", "not_bookable"]


class FreeDesks(BaseModel):
    """Desks free on a day; None for a part of the day when the site is shut."""

    day: int | None = Field(description="for the whole day (both halves open)")
    morning: int | None = Field(description=f"from opening until {MIDDAY:%H:%M}")
    afternoon: int | None = Field(description=f"from {MIDDAY:%H:%M} until closing")


class Space(BaseModel):
    id: str
    name: str
    district: str | None
    address: str | None
    latitude: float | None
    longitude: float | None
    distance_km: float | None = Field(description="as the crow flies; None without a place")
    bookable: bool = Field(description="whether the site takes desk bookings (has desks)")
    desks: int | None
    open_now: bool
    free_now: int | None = Field(description="None when shut now or not bookable")
    free_now_from: FreeFrom | None = Field(
        description="sensors: the larger of the sensors' count and the desks booked for now"
        " and not yet claimed; bookings: the sensors are silent, only the bookings count"
    )
    day: date
    day_status: DayStatus
    free_on_day: FreeDesks | None = Field(description="None unless day_status is open")
    usually_now: Usually | None = Field(description="at this hour on this weekday")
    usually_on_day: Usually | None = Field(
        description="at the fullest open hour of the day's weekday"
    )
    rooms: list[Room]


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


def find_spaces(
    engine: Engine, finder: SpaceFinder, query: SpacesQuery, now: datetime | None = None
) -> Spaces:
    """The spaces nearest the place asked for (by name without one), at most ``limit``.

    ``now`` (a test's clock) figures now afresh; without it the figures of now are at most
    ``NOW_TTL`` old."""
    directory = finder.directory(engine)
    place = _place(finder, directory, query)
    entries = [e for e in directory.entries if e.site.desks is not None or not query.bookable]
    distances = {e.site.id: _distance(place, e.site) for e in entries}
    if place is None:
        entries.sort(key=lambda e: (e.site.name.casefold(), e.site.id))
    else:
        entries.sort(key=lambda e: _by_distance(distances[e.site.id], e.site.id))
    entries = entries[: query.limit]
    if not entries:
        return Spaces(place=place, spaces=[])
    snapshot = finder.now(engine, directory, now)
    figures = snapshot.sites
    _check_day(query.day, min(figures[e.site.id].today for e in entries))
    day_of = {e.site.id: query.day or figures[e.site.id].today for e in entries}
    # Today's bookings are in the snapshot; another day's are read now, for these sites only.
    later = [e.site.id for e in entries if e.site.desks is not None and query.day is not None]
    later = [site for site in later if day_of[site] != figures[site].today]
    taken = snapshot.taken_today
    if later:
        with engine.connect() as conn:
            taken = taken | taken_on(conn, later, day_of)
    weekdays = {day.weekday() for day in day_of.values()}
    hints = {w: finder.hints(engine, directory, w, snapshot.at) for w in weekdays}
    spaces = []
    for entry in entries:
        site, now_is = entry.site, figures[entry.site.id]
        day = day_of[site.id]
        status, free_on_day = _on_day(entry, day, now_is.today, taken.get(site.id, Taken()))
        hint = hints[day.weekday()].get(site.id)
        spaces.append(
            Space(
                id=site.id,
                name=site.name,
                district=site.district,
                address=site.address,
                latitude=site.latitude,
                longitude=site.longitude,
                distance_km=distances[site.id],
                bookable=site.desks is not None,
                desks=site.desks,
                open_now=now_is.open_now,
                free_now=now_is.free_now,
                free_now_from=now_is.free_now_from,
                day=day,
                day_status=status,
                free_on_day=free_on_day,
                usually_now=now_is.usually_now,
                usually_on_day=hint.fullest if hint else None,
                rooms=list(entry.rooms),
            )
        )
    return Spaces(place=place, spaces=spaces)


def _place(finder: SpaceFinder, directory: Directory, query: SpacesQuery) -> Place | None:
    """Where distances are measured from: the coordinates given, or the place ``near`` names
    in the gazetteer, else in the sites' addresses; Invalid with near misses for neither."""
    given = query.latitude is not None, query.longitude is not None
    if query.near is not None:
        if any(given):
            raise Invalid("near: give either a place (near) or its coordinates (lat, lon)")
        if not fold(query.near):
            raise Invalid("near: give a postcode or the name of a town")
        books = [g for g in (finder.gazetteer, directory.places) if g is not None]
        for book in books:
            found = book.find(query.near)
            if found is not None:
                return Place(name=found.name, latitude=found.latitude, longitude=found.longitude)
        misses = list(
            dict.fromkeys(name for book in books for name in book.near_misses(query.near))
        )
        hint = f" (did you mean {' or '.join(repr(m) for m in misses[:3])}?)" if misses else ""
        raise Invalid(f"near: no place called {query.near[:MAX_QUERY]!r}{hint}")
    if all(given):
        assert query.latitude is not None and query.longitude is not None
        return Place(name=None, latitude=query.latitude, longitude=query.longitude)
    if any(given):
        raise Invalid("lat and lon: give both (or near, a postcode or a town)")
    return None


def _check_day(day: date | None, earliest_today: date) -> None:
    if day is None:
        return
    if day < earliest_today:
        raise Invalid(f"day: {day.isoformat()} is in the past")
    if day > earliest_today + timedelta(days=MAX_DAYS_AHEAD):
        raise Invalid(f"day: at most {MAX_DAYS_AHEAD} days ahead")


def _distance(place: Place | None, site: Site) -> float | None:
    """The great-circle distance in km (haversine), to 0.01 km."""
    if place is None or site.latitude is None or site.longitude is None:
        return None
    lat1, lat2 = math.radians(place.latitude), math.radians(site.latitude)
    dlat, dlon = lat2 - lat1, math.radians(site.longitude - place.longitude)
    a = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return round(2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a))), 2)


def _by_distance(distance: float | None, site: str) -> tuple[bool, float, str]:
    """Nearest first; sites without a place last, by id."""
    return distance is None, distance or 0.0, site


def _on_day(
    entry: Entry, day: date, today: date, taken: Taken
) -> tuple[DayStatus, FreeDesks | None]:
    """Whether the site takes desk bookings on ``day``, and how many desks are free then."""
    site = entry.site
    if site.desks is None:
        return "not_bookable", None
    if day in entry.hours.closed:
        return "closed_day", None
    parts = entry.parts[day.weekday()]
    if not parts:
        return "closed", None
    if (day - today).days > site.horizon_days:
        return "too_far_ahead", None

    def free(part: Part) -> int:
        return max(site.desks - taken.in_part(part), 0) if site.desks is not None else 0

    return "open", FreeDesks(
        day=free(Part.DAY) if len(parts) == 2 else None,
        morning=free(Part.MORNING) if Part.MORNING in parts else None,
        afternoon=free(Part.AFTERNOON) if Part.AFTERNOON in parts else None,
    )
