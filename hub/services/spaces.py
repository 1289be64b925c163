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

Per request this is three grouped queries over the sites asked for (bookings of the day, the
bookings not yet claimed today, the sensors' newest samples); the sites themselves and the
usual figures are kept in memory (``SpaceFinder``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, select

from hafen.acl import TimeWindow
from hub import db
from hub.services.desk_pool import MIDDAY, Part, Taken, desks_taken
from hub.services.errors import Invalid
from hub.services.opening import is_open, open_parts
from hub.services.places import MAX_QUERY, Gazetteer, fold, sites_gazetteer
from hub.services.sites import Site, list_all_sites
from hub.services.usual import Hours, Usually, UsualWeekdays, usually
from hub.timeline import HOLD

#: How long the sites (places, hours, desks, rooms) are kept, in seconds: a change made
#: through this hub clears them at once, one made elsewhere shows within this.
DIRECTORY_TTL = 30.0
#: The most spaces one answer lists, and how far ahead a day may be asked for (any site's
#: horizon is at most this).
MAX_LIMIT, MAX_DAYS_AHEAD = 500, 730
EARTH_RADIUS_KM = 6371.0088

DayStatus = Literal["open", "closed", "closed_day", "too_far_ahead", "not_bookable"]


class RoomSeats(BaseModel):
    id: str
    name: str
    seats: int


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
    free_now_from: Literal["sensors", "bookings"] | None = Field(
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
    rooms: list[RoomSeats]


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


@dataclass(frozen=True)
class _Entry:
    """A site as finding a space needs it, parsed once."""

    site: Site
    zone: ZoneInfo
    windows: tuple[TimeWindow, ...] | None
    closed: frozenset[date]
    rooms: tuple[RoomSeats, ...]


@dataclass(frozen=True)
class _Directory:
    entries: tuple[_Entry, ...]
    #: The places the sites' addresses name (postcodes, towns).
    places: Gazetteer


class SpaceFinder:
    """What finding a space keeps in memory: the sites (``DIRECTORY_TTL``), the usual
    figures (hub.services.usual) and the operator's gazetteer (None: only the sites'
    addresses name places)."""

    def __init__(self, gazetteer: Gazetteer | None = None, ttl: float = DIRECTORY_TTL) -> None:
        self.gazetteer, self.ttl = gazetteer, ttl
        self.usual = UsualWeekdays()
        self._directory: _Directory | None = None
        self._built_at = float("-inf")
        self._lock = threading.Lock()

    def directory(self, engine: Engine) -> _Directory:
        if self._directory is None or time.monotonic() - self._built_at >= self.ttl:
            with self._lock:
                if self._directory is None or time.monotonic() - self._built_at >= self.ttl:
                    self._directory = _load(engine)
                    self._built_at = time.monotonic()
        return self._directory

    def clear(self) -> None:
        """Forget the sites: one was added or changed."""
        with self._lock:
            self._directory = None


def _load(engine: Engine) -> _Directory:
    r = db.rooms.c
    with engine.connect() as conn:
        sites = list_all_sites(conn)
        rooms: dict[str, list[RoomSeats]] = {}
        for row in conn.execute(select(r.site_id, r.id, r.name, r.seats).order_by(r.id)):
            rooms.setdefault(row.site_id, []).append(
                RoomSeats(id=row.id, name=row.name, seats=row.seats)
            )
    entries = tuple(
        _Entry(
            site=site,
            zone=ZoneInfo(site.timezone),
            windows=tuple(site.opening_hours) if site.opening_hours is not None else None,
            closed=frozenset(site.closed_days or ()),
            rooms=tuple(rooms.get(site.id, ())),
        )
        for site in sites
    )
    places = sites_gazetteer((s.address, s.latitude, s.longitude) for s in sites)
    return _Directory(entries, places)


def find_spaces(
    engine: Engine, finder: SpaceFinder, query: SpacesQuery, now: datetime | None = None
) -> Spaces:
    """The spaces nearest the place asked for (by name without one), at most ``limit``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
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
    today = {e.site.id: now.astimezone(e.zone).date() for e in entries}
    _check_day(query.day, min(today.values()))
    day_of = {site: query.day or local_today for site, local_today in today.items()}
    zones = {e.site.id: e.site.timezone for e in directory.entries}
    usual_now = _usual(
        finder, engine, zones, {now.astimezone(e.zone).weekday() for e in entries}, now
    )
    usual_day = _usual(finder, engine, zones, {d.weekday() for d in day_of.values()}, now)
    bookable = [e.site.id for e in entries if e.site.desks is not None]
    with engine.connect() as conn:
        taken = _taken(conn, bookable, day_of, not_arrived=False)
        unclaimed = _taken(conn, bookable, today, not_arrived=True)
        sensed = sensor_counts(conn, bookable, now)
    spaces = []
    for entry in entries:
        site = entry.site
        local_now = now.astimezone(entry.zone)
        day = day_of[site.id]
        open_now = is_open(entry.windows, entry.closed, local_now)
        free_now, source = (
            free_now_of(site.desks, local_now, unclaimed.get(site.id), sensed.get(site.id))
            if open_now and site.desks is not None
            else (None, None)
        )
        status, free_on_day = _on_day(entry, day, today[site.id], taken.get(site.id, Taken()))
        on_day_hours = usual_day.get(day.weekday(), {}).get(site.id)
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
                open_now=open_now,
                free_now=free_now,
                free_now_from=source,
                day=day,
                day_status=status,
                free_on_day=free_on_day,
                usually_now=usually(
                    usual_now.get(local_now.weekday(), {}).get(site.id),
                    local_now.hour,
                    local_now.weekday(),
                    site.capacity or site.desks,
                ),
                usually_on_day=_fullest(on_day_hours, entry, day, site.capacity or site.desks),
                rooms=list(entry.rooms),
            )
        )
    return Spaces(place=place, spaces=spaces)


def _place(finder: SpaceFinder, directory: _Directory, query: SpacesQuery) -> Place | None:
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


def _usual(
    finder: SpaceFinder, engine: Engine, zones: dict[str, str], weekdays: set[int], now: datetime
) -> dict[int, dict[str, Hours]]:
    return {weekday: finder.usual.get(engine, zones, weekday, now) for weekday in weekdays}


def _taken(
    conn: Connection, sites: list[str], day_of: dict[str, date], *, not_arrived: bool
) -> dict[str, Taken]:
    """Desks taken at each site on its day (one query per distinct day: one, mostly)."""
    by_day: dict[date, list[str]] = {}
    for site in sites:
        by_day.setdefault(day_of[site], []).append(site)
    taken: dict[str, Taken] = {}
    for day, ids in by_day.items():
        taken.update(desks_taken(conn, ids, day, not_arrived=not_arrived))
    return taken


def sensor_counts(conn: Connection, sites: list[str], now: datetime) -> dict[str, int]:
    """People the sensors count at each site now: each device's newest sample while fresh
    (``HOLD``, as the live overview), the upper end of its interval where it sends one.
    Sites whose devices are all silent are left out: unknown, not empty."""
    if not sites:
        return {}
    n = db.occupancy_now.c
    rows = conn.execute(
        select(n.site, n.count, n.high).where(n.site.in_(sites), n.at >= now - HOLD)
    )
    counts: dict[str, int] = {}
    for site, count, high in rows:
        counts[site] = counts.get(site, 0) + (high if high is not None else count)
    return counts


def free_now_of(
    desks: int, local_now: datetime, unclaimed: Taken | None, sensed: int | None
) -> tuple[int, Literal["sensors", "bookings"]]:
    """Desks free now, and what the figure rests on (the module's docstring says how)."""
    part = Part.MORNING if local_now.time() < MIDDAY else Part.AFTERNOON
    booked = unclaimed.in_part(part) if unclaimed is not None else 0
    if sensed is None:
        return max(desks - booked, 0), "bookings"
    return max(desks - max(sensed, booked), 0), "sensors"


def _on_day(
    entry: _Entry, day: date, today: date, taken: Taken
) -> tuple[DayStatus, FreeDesks | None]:
    site = entry.site
    if site.desks is None:
        return "not_bookable", None
    if day in entry.closed:
        return "closed_day", None
    parts = open_parts(entry.windows, day.weekday())
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


def _fullest(hours: Hours | None, entry: _Entry, day: date, places: int | None) -> Usually | None:
    """The usual figure of the day's fullest hour among those the site is open."""
    if hours is None:
        return None
    start = datetime.combine(day, datetime.min.time(), entry.zone)
    open_hours = [
        h
        for h in range(24)
        if hours[h] is not None
        and is_open(entry.windows, frozenset(), start.replace(hour=h, minute=30))
    ]
    if not open_hours:
        return None
    fullest = max(open_hours, key=lambda h: hours[h] or 0.0)
    return usually(hours, fullest, day.weekday(), places)
