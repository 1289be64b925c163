"""What finding a space (hub.services.spaces) keeps in memory, so that a question about all
500 sites costs a sort and at most one query:

- the sites, parsed once (places, hours as spans, rooms), for ``DIRECTORY_TTL`` seconds or
  until a change through this hub clears them;
- the figures of now for every site at once (open now, desks free now, today's bookings),
  for ``NOW_TTL`` seconds, as the live overview keeps its picture: a second's age is nothing
  beside sensors that sample each minute, and a thousand phones asking cost the store three
  queries a second;
- the usual figures per weekday (hub.services.usual), turned into hints once per table;
- each site's figures on a day asked for, for ``NOW_TTL`` seconds too.

Each site's figures of now and on a day are kept as models and as JSON, so that an answer is
a sort by distance and the pieces put together (hub.services.spaces.Found).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Row, func, select

from hub import db
from hub.services.desk_pool import MIDDAY, Part, Taken, desks_taken
from hub.services.opening import WeeklyHours
from hub.services.places import Gazetteer, sites_gazetteer
from hub.services.rooms import Room
from hub.services.sites import Site, site_from_row
from hub.services.space_models import DayStatus, FreeDesks, FreeFrom, SpaceNow, SpaceOnDay
from hub.services.usual import Hours, Usually, UsualWeekdays, usually
from hub.timeline import HOLD

#: How long the sites are kept, in seconds: a change made through this hub clears them at
#: once, one made elsewhere (another replica, a script) shows within this.
DIRECTORY_TTL = 30.0
#: How old the figures of now may be, in seconds (the live overview's ``OVERVIEW_TTL``).
NOW_TTL = 1.0
#: Days whose answers are kept at once (a day asked for is made again within ``NOW_TTL``).
DAYS_KEPT = 16


@dataclass(frozen=True)
class Entry:
    """A site as finding a space needs it, parsed once."""

    site: Site
    zone: ZoneInfo
    hours: WeeklyHours
    #: Per weekday (Monday first): the local hours it opens, and the halves it opens at all.
    open_hours: tuple[tuple[int, ...], ...]
    parts: tuple[frozenset[Part], ...]
    rooms: tuple[Room, ...]


@dataclass(frozen=True)
class Directory:
    entries: tuple[Entry, ...]
    #: The places the sites' addresses name (postcodes, towns).
    places: Gazetteer
    #: Each site's time zone.
    zones: dict[str, str]
    by_id: dict[str, Entry]


@dataclass(frozen=True)
class Hints:
    """A site's usual figures for one weekday as the answer shows them: at an hour, and at
    the fullest hour it is open (made once; an hour's only when asked: a new directory or
    table must not cost 24 models for each of 500 sites)."""

    hours: Hours
    weekday: int
    places: int | None
    fullest: Usually | None

    def at(self, hour: int) -> Usually | None:
        return usually(self.hours, hour, self.weekday, self.places)


@dataclass(frozen=True)
class NowFigures:
    """One site's figures of now: its today, what the answer shows, and that as JSON."""

    today: date
    space: SpaceNow
    json: bytes


@dataclass(frozen=True)
class DayFigures:
    """One site's figures on a day, and that as JSON."""

    space: SpaceOnDay
    json: bytes


@dataclass(frozen=True)
class Snapshot:
    """Every site's figures of now, and the desks today's bookings take."""

    at: datetime
    directory: Directory
    sites: dict[str, NowFigures]
    taken_today: dict[str, Taken]


class SpaceFinder:
    """The sites, the figures of now, the usual hints and the operator's gazetteer (None:
    only the sites' addresses name places). Each is rebuilt by one caller at a time; the
    others wait for it instead of querying too."""

    def __init__(
        self,
        gazetteer: Gazetteer | None = None,
        ttl: float = DIRECTORY_TTL,
        now_ttl: float = NOW_TTL,
    ) -> None:
        self.gazetteer, self.ttl, self.now_ttl = gazetteer, ttl, now_ttl
        self.usual = UsualWeekdays()
        self._directory: Directory | None = None
        self._stored: Stored | None = None
        self._built_at = float("-inf")
        self._snapshot: Snapshot | None = None
        self._taken_at = float("-inf")
        #: Per weekday: the hints made of a usual table for a directory (both kept to tell
        #: when either was read again).
        self._hints: dict[int, tuple[dict[str, Hours], Directory, dict[str, Hints | None]]] = {}
        #: Per day (None: each site's today): when it was made, and each site's figures.
        self._days: dict[date | None, tuple[float, dict[str, DayFigures]]] = {}
        self._lock = threading.Lock()
        self._now_lock = threading.Lock()
        self._day_lock = threading.Lock()

    def directory(self, engine: Engine) -> Directory:
        """The sites, read again when older than ``ttl`` or cleared; made again only if
        they changed (reading 500 rows is cheap, parsing them and what hangs off the
        directory is not)."""
        directory = self._directory
        if directory is None or time.monotonic() - self._built_at >= self.ttl:
            with self._lock:
                directory = self._directory
                if directory is None or time.monotonic() - self._built_at >= self.ttl:
                    stored = _read(engine)
                    if directory is None or stored != self._stored:
                        directory = self._directory = _build(stored)
                        self._stored = stored
                    self._built_at = time.monotonic()
        return directory

    def clear(self) -> None:
        """Forget the sites and what was figured of them: one was added or changed."""
        with self._lock:
            self._directory = None
            self._snapshot = None
            self._days.clear()

    def now(self, engine: Engine, directory: Directory, at: datetime | None = None) -> Snapshot:
        """The figures of now for every site: at most ``now_ttl`` old, or fresh at ``at``
        (a given clock: tests)."""
        if at is not None:
            return self._take(engine, directory, at.astimezone(UTC))
        snapshot = self._snapshot
        if (
            snapshot is None
            or snapshot.directory is not directory
            or time.monotonic() - self._taken_at >= self.now_ttl
        ):
            with self._now_lock:
                snapshot = self._snapshot
                if (
                    snapshot is None
                    or snapshot.directory is not directory
                    or time.monotonic() - self._taken_at >= self.now_ttl
                ):
                    snapshot = self._snapshot = self._take(engine, directory, datetime.now(UTC))
                    self._taken_at = time.monotonic()
        return snapshot

    def hints(
        self, engine: Engine, directory: Directory, weekday: int, now: datetime
    ) -> dict[str, Hints | None]:
        """Each site's usual figures for ``weekday`` as hints, made once per usual table and
        directory: they change far more seldom than spaces are asked for."""
        table = self.usual.get(engine, directory.zones, weekday, now)
        kept = self._hints.get(weekday)
        if kept is not None and kept[0] is table and kept[1] is directory:
            return kept[2]
        made = {e.site.id: _hints(table.get(e.site.id), e, weekday) for e in directory.entries}
        self._hints[weekday] = (table, directory, made)  # a race makes the same twice
        return made

    def on_day(
        self, engine: Engine, snapshot: Snapshot, day: date | None, sites: list[str]
    ) -> dict[str, DayFigures]:
        """The figures of ``sites`` on ``day`` (None: each one's own today), at most
        ``now_ttl`` old: those not kept yet are made (one grouped query) and kept beside the
        others of that day. Made afresh for a snapshot at a test's clock."""
        if snapshot is not self._snapshot:
            return self._on_day(engine, snapshot, day, sites)
        kept = self._days.get(day)
        if (
            kept is not None
            and time.monotonic() - kept[0] < self.now_ttl
            and all(site in kept[1] for site in sites)
        ):
            return kept[1]
        with self._day_lock:
            kept = self._days.get(day)
            if kept is None or time.monotonic() - kept[0] >= self.now_ttl:
                if len(self._days) >= DAYS_KEPT:
                    self._days.clear()
                kept = self._days[day] = (time.monotonic(), {})
            missing = [site for site in sites if site not in kept[1]]
            if missing:
                kept[1].update(self._on_day(engine, snapshot, day, missing))
            return kept[1]

    def _on_day(
        self, engine: Engine, snapshot: Snapshot, day: date | None, sites: list[str]
    ) -> dict[str, DayFigures]:
        """The figures of ``sites`` on the day: one grouped query for its bookings (none
        for today: the snapshot has them), each site's figures encoded once."""
        figures, entries = snapshot.sites, snapshot.directory.by_id
        day_of = {site: day or figures[site].today for site in sites}
        later = [
            site
            for site in sites
            if entries[site].site.desks is not None and day_of[site] != figures[site].today
        ]
        taken = snapshot.taken_today
        if later:
            with engine.connect() as conn:
                taken = taken | dict.fromkeys(later, Taken()) | taken_on(conn, later, day_of)
        weekdays = {d.weekday() for d in day_of.values()}
        hints = {w: self.hints(engine, snapshot.directory, w, snapshot.at) for w in weekdays}
        made = {}
        for site in sites:
            entry, on = entries[site], day_of[site]
            status, free = day_status(entry, on, figures[site].today, taken.get(site, Taken()))
            hint = hints[on.weekday()].get(site)
            space = SpaceOnDay(
                day=on,
                day_status=status,
                free_on_day=free,
                usually_on_day=hint.fullest if hint else None,
            )
            made[site] = DayFigures(space, space.model_dump_json().encode())
        return made

    def _take(self, engine: Engine, directory: Directory, at: datetime) -> Snapshot:
        """Three grouped queries over the bookable sites: today's bookings, those of them
        not claimed yet, and the sensors' newest samples."""
        today = {e.site.id: at.astimezone(e.zone).date() for e in directory.entries}
        bookable = [e.site.id for e in directory.entries if e.site.desks is not None]
        with engine.connect() as conn:
            taken_today = taken_on(conn, bookable, today)
            unclaimed = taken_on(conn, bookable, today, not_arrived=True)
            sensed = sensor_counts(conn, bookable, at)
        weekdays = {at.astimezone(e.zone).weekday() for e in directory.entries}
        hints = {weekday: self.hints(engine, directory, weekday, at) for weekday in weekdays}
        figures = {}
        for entry in directory.entries:
            site, local = entry.site, at.astimezone(entry.zone)
            open_now = entry.hours.open_at(local)
            free_now: int | None = None
            source: FreeFrom | None = None
            if open_now and site.desks is not None:
                free_now, source = free_now_of(
                    site.desks, local, unclaimed.get(site.id), sensed.get(site.id)
                )
            hint = hints[local.weekday()].get(site.id)
            space = SpaceNow(
                id=site.id,
                name=site.name,
                district=site.district,
                address=site.address,
                latitude=site.latitude,
                longitude=site.longitude,
                bookable=site.desks is not None,
                desks=site.desks,
                open_now=open_now,
                free_now=free_now,
                free_now_from=source,
                usually_now=hint.at(local.hour) if hint else None,
                rooms=list(entry.rooms),
            )
            figures[site.id] = NowFigures(today[site.id], space, space.model_dump_json().encode())
        return Snapshot(at, directory, figures, taken_today)


#: The sites and rooms as stored: a directory is made again only when they differ.
Stored = tuple[list[Row], list[Row]]


def _read(engine: Engine) -> Stored:
    r = db.rooms.c
    with engine.connect() as conn:
        sites = list(conn.execute(select(db.sites).order_by(db.sites.c.id)))
        rooms = list(conn.execute(select(r.site_id, r.id, r.name, r.seats).order_by(r.id)))
    return sites, rooms


def _build(stored: Stored) -> Directory:
    site_rows, room_rows = stored
    sites = [site_from_row(row) for row in site_rows]
    rooms: dict[str, list[Room]] = {}
    for row in room_rows:
        rooms.setdefault(row.site_id, []).append(Room(id=row.id, name=row.name, seats=row.seats))
    entries = []
    for site in sites:
        hours = WeeklyHours.of(site.opening_hours, site.closed_days)
        entries.append(
            Entry(
                site=site,
                zone=ZoneInfo(site.timezone),
                hours=hours,
                open_hours=tuple(tuple(hours.hours(weekday)) for weekday in range(7)),
                parts=tuple(frozenset(hours.weekday_parts(weekday)) for weekday in range(7)),
                rooms=tuple(rooms.get(site.id, ())),
            )
        )
    places = sites_gazetteer((s.address, s.latitude, s.longitude) for s in sites)
    zones = {s.id: s.timezone for s in sites}
    return Directory(tuple(entries), places, zones, {e.site.id: e for e in entries})


def taken_on(
    conn: Connection, sites: Iterable[str], day_of: dict[str, date], *, not_arrived: bool = False
) -> dict[str, Taken]:
    """Desks taken at each site on its own day (one query per distinct day: one, mostly)."""
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
        select(n.site, func.sum(func.coalesce(n.high, n.count)))
        .where(n.site.in_(sites), n.at >= now - HOLD)
        .group_by(n.site)
    )
    return {site: int(people) for site, people in rows}


def free_now_of(
    desks: int, local_now: datetime, unclaimed: Taken | None, sensed: int | None
) -> tuple[int, FreeFrom]:
    """Desks free now, and what the figure rests on: ``desks - max(sensed, booked for the
    half-day now and not claimed yet)``, never below 0; the bookings alone when the sensors
    are silent (``sensed`` None)."""
    part = Part.MORNING if local_now.time() < MIDDAY else Part.AFTERNOON
    booked = unclaimed.in_part(part) if unclaimed is not None else 0
    if sensed is None:
        return max(desks - booked, 0), "bookings"
    return max(desks - max(sensed, booked), 0), "sensors"


def day_status(
    entry: Entry, day: date, today: date, taken: Taken
) -> tuple[DayStatus, FreeDesks | None]:
    """Whether the site takes desk bookings on ``day``, and how many desks are free then:
    for the whole day only where both halves open."""
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
    desks = site.desks

    def free(part: Part) -> int | None:
        return max(desks - taken.in_part(part), 0)

    return "open", FreeDesks(
        day=free(Part.DAY) if len(parts) == 2 else None,
        morning=free(Part.MORNING) if Part.MORNING in parts else None,
        afternoon=free(Part.AFTERNOON) if Part.AFTERNOON in parts else None,
    )


def _hints(hours: Hours | None, entry: Entry, weekday: int) -> Hints | None:
    """The usual figures of a site for ``weekday`` as hints (None: nothing known)."""
    if hours is None:
        return None
    places = entry.site.capacity or entry.site.desks
    known = [h for h in entry.open_hours[weekday] if hours[h] is not None]
    fullest = max(known, key=lambda h: hours[h] or 0.0, default=None)
    hint = usually(hours, fullest, weekday, places) if fullest is not None else None
    return Hints(hours, weekday, places, hint)
