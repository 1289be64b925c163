"""The live network overview: rebuilt in the background while someone watches, pushed on change.

One thread builds the whole network's picture (doors, headcount, CO2, today's entries) a few
times a second, only while at least one browser listens, and bumps ``generation`` when it
changed. Each listener filters it to the sites its user may see: a hundred open phones cost
the store the same few small queries as one. Streams sleep until the generation moves (no
polling), and get only the sites that changed since the picture they last sent, encoded once
for all the streams that see the same sites.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from hub import db
from hub.api.overview import build_overview
from hub.auth import Principal, Role
from hub.timeline import HOLD

log = logging.getLogger(__name__)
#: How often the picture is rebuilt while someone watches, in seconds.
REFRESH = 0.25
#: A page load serves a picture this old as it is, one older than that and refreshes it in
#: the background (the page never waits: a rebuild beside it would double its time), and one
#: older than ``MAX_AGE`` only after rebuilding it. Open streams keep it fresh meanwhile.
PAGE_AGE, MAX_AGE = 2.0, 5.0
#: How many generations' changes are kept: a stream further behind gets the whole picture.
CHANGES_KEPT = 64
#: Encoded payloads kept at most (one per kind of viewer and starting point).
PAYLOADS_KEPT = 1_000
#: CO2 levels (ppm) above which the dashboard says to air the room (German UBA guidance:
#: below 1000 is harmless, above 2000 unacceptable).
CO2_VENTILATE, CO2_VENTILATE_NOW = 1000, 2000


@dataclass(frozen=True)
class SiteLive:
    """What the overview shows of one site."""

    site: str
    name: str
    devices: int
    online: int
    lagging: int
    last_seen: str | None
    count: int | None = None
    capacity: int | None = None
    present: bool | None = None
    co2: int | None = None
    air: str | None = None
    entries_today: int | None = None
    visitors_today: int | None = None
    stale: bool = True


def air_hint(ppm: int | None) -> str | None:
    """``ok``, ``ventilate`` or ``ventilate now`` for a CO2 reading; None without one."""
    if ppm is None:
        return None
    if ppm > CO2_VENTILATE_NOW:
        return "ventilate now"
    return "ventilate" if ppm > CO2_VENTILATE else "ok"


def build(engine: Engine) -> list[SiteLive]:
    """The whole network's picture, from small tables only (never raw events or samples)."""
    doors = build_overview(engine)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        zones = dict(conn.execute(select(db.sites.c.id, db.sites.c.timezone)).all())
        occupancy = conn.execute(select(db.occupancy_now)).all()
        today = _today_by_site(conn, zones, now)
    by_site: dict[str, list] = {}
    heard: dict[str, datetime] = {}  # a device is heard from by its samples too, each minute
    for row in occupancy:
        at = db.aware(row.at)
        heard[row.site] = max(heard.get(row.site, at), at)
        if now - at <= HOLD:
            by_site.setdefault(row.site, []).append(row)
    out = []
    for site in doors:
        rows = by_site.get(site.site, [])
        readings = [v for r in rows for v in r.co2.values() if v is not None]
        co2 = max(readings, default=None)
        entries, visitors = today.get(site.site, (0, 0))
        out.append(
            SiteLive(
                site=site.site,
                name=site.name,
                devices=site.devices,
                online=site.online,
                lagging=site.lagging,
                last_seen=_latest(site.last_seen, heard.get(site.site)),
                count=sum(r.count for r in rows) if rows else None,
                capacity=max((r.capacity for r in rows if r.capacity), default=None),
                present=any(r.present for r in rows) if rows else None,
                co2=co2,
                air=air_hint(co2),
                entries_today=entries,
                visitors_today=visitors,
                stale=not rows,
            )
        )
    return out


def _latest(*times: datetime | None) -> str | None:
    known = [t for t in times if t is not None]
    return max(known).isoformat() if known else None


def _today_by_site(conn, zones: dict[str, str], now: datetime) -> dict[str, tuple[int, int]]:
    """Entries and visitors of each site's own today (sites may sit in different zones)."""
    days = {
        site: now.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d") for site, zone in zones.items()
    }
    d = db.site_days.c
    rows = conn.execute(
        select(d.site, d.day, d.entries, d.visitors).where(d.day.in_(sorted(set(days.values()))))
    )
    return {site: (n, visitors) for site, day, n, visitors in rows if days.get(site) == day}


def visible(sites: list[SiteLive], who: Principal) -> list[dict]:
    """The sites ``who`` may see; technicians see doors and devices, not people."""
    if who.role == Role.SITE_OPERATOR:
        sites = [s for s in sites if s.site in who.sites]
    out = [asdict(s) for s in sites]
    if who.role == Role.TECHNICIAN:
        hidden = ("count", "present", "entries_today", "visitors_today")
        out = [s | dict.fromkeys(hidden) for s in out]
    return out


class LiveFeed:
    """The background builder; pages read ``sites`` and wait for ``generation`` to move."""

    def __init__(self, engine: Engine, refresh: float = REFRESH) -> None:
        self.engine, self.refresh = engine, refresh
        self.sites: list[SiteLive] = []
        self.generation = 0
        self._listeners = 0
        self._refreshing = False
        self._built_at = float("-inf")
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one build at a time; the others wait for it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The sites that changed in each recent generation, newest last.
        self._changes: deque[tuple[int, frozenset[str]]] = deque(maxlen=CHANGES_KEPT)
        self._payloads: dict[tuple, tuple[int, str]] = {}
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = set()

    def current(self) -> list[SiteLive]:
        """The picture for a page load (see ``PAGE_AGE``)."""
        age = time.monotonic() - self._built_at
        if age > MAX_AGE:
            self._rebuild(older_than=MAX_AGE)
        elif age > PAGE_AGE:
            with self._lock:
                if self._refreshing:
                    return self.sites
                self._refreshing = True
            threading.Thread(target=self._refresh_once, name="live-refresh", daemon=True).start()
        return self.sites

    def _refresh_once(self) -> None:
        try:
            self._rebuild()
        except Exception:
            log.exception("live overview: rebuild failed")
        finally:
            self._refreshing = False

    @contextmanager
    def listening(self):
        """While inside, the picture is kept fresh for one more listener."""
        with self._lock:
            self._listeners += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
                self._thread.start()
        try:
            yield self
        finally:
            with self._lock:
                self._listeners -= 1

    @property
    def closed(self) -> bool:
        """The hub is stopping: streams end so that it need not wait for them."""
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._wake()

    async def changed(self, seen: int, timeout: float) -> None:
        """Return once the picture moved past generation ``seen``, the feed closed, or after
        ``timeout`` seconds; a stream sleeps here instead of polling."""
        loop = asyncio.get_running_loop()
        waiter = (loop, loop.create_future())
        with self._lock:
            self._waiters.add(waiter)
        try:
            if self.generation == seen and not self.closed:
                await asyncio.wait_for(waiter[1], timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def payload(self, who: Principal, site: str | None, seen: int) -> tuple[int, str]:
        """The generation now and, as JSON, the sites ``who`` may see (only ``site``, if given)
        that changed since generation ``seen`` (all of them for a new stream)."""
        scope = (who.role, who.sites if who.role == Role.SITE_OPERATOR else None, site)
        with self._lock:
            generation, sites = self.generation, self.sites
            changed = self._changed_since(seen)
            hit = self._payloads.get((scope, changed))
        if hit is not None and hit[0] == generation:
            return hit
        chosen = [
            s
            for s in sites
            if (site is None or s.site == site) and (changed is None or s.site in changed)
        ]
        body = json.dumps(visible(chosen, who), separators=(",", ":"))
        with self._lock:
            if len(self._payloads) >= PAYLOADS_KEPT:
                self._payloads.clear()
            self._payloads[(scope, changed)] = (generation, body)
        return generation, body

    def _changed_since(self, seen: int) -> frozenset[str] | None:
        """The sites changed after generation ``seen``; None if that is too long ago to say."""
        if seen < 0 or not self._changes or self._changes[0][0] > seen + 1:
            return None
        return frozenset().union(*(ids for gen, ids in self._changes if gen > seen))

    def _wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that stream's loop is already closed
                loop.call_soon_threadsafe(_resolve, future)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh):
            if self._listeners:
                try:
                    self._rebuild()
                except Exception:  # a store hiccup must not end the feed for good
                    log.exception("live overview: rebuild failed; trying again")

    def _rebuild(self, older_than: float = 0.0) -> None:
        """Build the picture, unless one younger than ``older_than`` seconds was built while
        this caller waited for the build lock."""
        with self._build_lock:
            if time.monotonic() - self._built_at <= older_than:
                return
            sites = build(self.engine)
            self._publish(sites)

    def _publish(self, sites: list[SiteLive]) -> None:
        with self._lock:
            self._built_at = time.monotonic()
            if sites == self.sites:
                return
            before = {s.site: s for s in self.sites}
            changed = frozenset(s.site for s in sites if before.get(s.site) != s)
            self.sites = sites
            self.generation += 1
            self._changes.append((self.generation, changed))
        self._wake()


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def since(at: str | None) -> str:
    """'12 s ago', '5 min ago', '3 h ago' or '2 days ago' for an ISO time; '' without one."""
    if at is None:
        return ""
    seconds = (datetime.now(UTC) - datetime.fromisoformat(at)).total_seconds()
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "days" else 1):
            return f"{int(seconds // size)} {unit} ago"
    return f"{max(int(seconds), 0)} s ago"
