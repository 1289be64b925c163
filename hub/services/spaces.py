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

What a request costs: a sort of the sites by distance, and the answer put together from
pieces kept in memory (hub.services.space_cache): the sites, the figures of now (three
grouped queries a second at most), the usual hints, and each day's answers (one grouped
query when a day other than today is first asked for in a second).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from hub.services.errors import Invalid, NotFound
from hub.services.opening import WeeklyHours
from hub.services.places import MAX_QUERY, fold
from hub.services.sites import Site
from hub.services.space_cache import DayFigures, Directory, NowFigures, SpaceFinder
from hub.services.space_models import MAX_DAYS_AHEAD, Place, Space, Spaces, SpacesQuery
from hub.services.wording import N_, words

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Found:
    """The spaces found, nearest first: each one's distance, its figures of now and on the
    day. ``model`` makes them the answer's model; ``json`` puts the JSON the figures were
    kept as together (what the API sends: the same, each space's distance first, without
    encoding 500 spaces again for every request)."""

    place: Place | None
    spaces: list[tuple[float | None, NowFigures, DayFigures]]

    def model(self) -> Spaces:
        return Spaces(
            place=self.place,
            spaces=[
                Space(distance_km=distance, **dict(now.space), **dict(on.space))
                for distance, now, on in self.spaces
            ],
        )

    def json(self) -> bytes:
        place = self.place.model_dump_json().encode() if self.place is not None else b"null"
        spaces = b",".join(
            b'{"distance_km":%s,%s,%s'
            % (json.dumps(distance).encode(), on.json[1:-1], now.json[1:])
            for distance, now, on in self.spaces
        )
        return b'{"place":' + place + b',"spaces":[' + spaces + b"]}"


def find_spaces(
    engine: Engine, finder: SpaceFinder, query: SpacesQuery, now: datetime | None = None
) -> Found:
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
        return Found(place, [])
    snapshot = finder.now(engine, directory, now)
    _check_day(query.day, min(snapshot.sites[e.site.id].today for e in entries))
    sites = [e.site.id for e in entries]
    on_day = finder.on_day(engine, snapshot, query.day, sites)
    return Found(place, [(distances[s], snapshot.sites[s], on_day[s]) for s in sites])


def one_space(
    engine: Engine, finder: SpaceFinder, site: str, day: date | None = None
) -> tuple[Space, str]:
    """One space as finding a space shows it (without a distance), on ``day`` (default: its
    today), and its time zone: what a member's page to book there shows."""
    directory = finder.directory(engine)
    if site not in directory.by_id:
        raise NotFound(f"no site {site!r}")
    snapshot = finder.now(engine, directory)
    _check_day(day, snapshot.sites[site].today)
    on_day = finder.on_day(engine, snapshot, day, [site])[site]
    return Found(None, [(None, snapshot.sites[site], on_day)]).model().spaces[0], directory.zones[
        site
    ]


def opening_on(engine: Engine, finder: SpaceFinder, spaces: list[Space]) -> dict[str, list[str]]:
    """Each space's opening hours on the day it shows, as local spans ("08:00–18:00"); none
    on a day it is closed. A span past midnight ends the day at 24:00."""
    entries = finder.directory(engine).by_id
    return {s.id: _spans(entries[s.id].hours, s.day) for s in spaces if s.id in entries}


def _spans(hours: WeeklyHours, day: date) -> list[str]:
    if day in hours.closed:
        return []
    return [f"{_clock(start)}–{_clock(end)}" for start, end in hours.spans[day.weekday()]]


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _place(finder: SpaceFinder, directory: Directory, query: SpacesQuery) -> Place | None:
    """Where distances are measured from: the coordinates given, or the place ``near`` names
    in the gazetteer, else in the sites' addresses; Invalid with near misses for neither."""
    given = query.latitude is not None, query.longitude is not None
    if query.near is not None:
        if any(given):
            raise Invalid("near: give either a place (near) or its coordinates (lat, lon)")
        if not fold(query.near):
            raise Invalid(words(N_("near: give a postcode or the name of a town")))
        books = [g for g in (finder.gazetteer, directory.places) if g is not None]
        for book in books:
            found = book.find(query.near)
            if found is not None:
                return Place(name=found.name, latitude=found.latitude, longitude=found.longitude)
        misses = list(
            dict.fromkeys(name for book in books for name in book.near_misses(query.near))
        )
        asked = repr(query.near[:MAX_QUERY])
        if not misses:
            raise Invalid(words(N_("near: no place called %(place)s"), place=asked))
        raise Invalid(
            words(
                N_("near: no place called %(place)s (did you mean %(misses)s?)"),
                place=asked,
                misses=" or ".join(repr(m) for m in misses[:3]),
            )
        )
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
        raise Invalid(words(N_("day: %(day)s is in the past"), day=day))
    if day > earliest_today + timedelta(days=MAX_DAYS_AHEAD):
        raise Invalid(words(N_("day: at most %(days)s days ahead"), days=MAX_DAYS_AHEAD))


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
