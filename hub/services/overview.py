"""The network at a glance: each site's doors (online, last seen, access-list lag) and, for the
live dashboard, its headcount, air and today's entries.

Every operator's phone polls the door overview, so it is computed once for the whole network
at most every ``OVERVIEW_TTL`` seconds and then only filtered for the caller: a thousand
polling screens cost the store one query a second. The live picture is built the same way,
for everyone at once, and cut to what each viewer may see by ``visible``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Connection, Engine, Row, select

from hub import db
from hub.access_compiler import newest_versions
from hub.auth import Principal
from hub.services.occupancy import air_hint, free_places, interval
from hub.services.scope import Scope
from hub.timeline import HOLD

#: How stale the overview may be, in seconds (device states arrive at most this often anyway).
OVERVIEW_TTL = 1.0
#: What a technician is not shown of a site's live picture: anything about people.
PEOPLE_FIELDS = (
    "count",
    "low",
    "high",
    "free_at_least",
    "free_at_most",
    "present",
    "entries_today",
    "visitors_today",
)


class SiteOverview(BaseModel):
    site: str
    name: str
    devices: int
    online: int
    last_seen: datetime | None
    acl_version: int | None
    lagging: int


_as_json = TypeAdapter(list[SiteOverview])


class OverviewCache:
    """The whole network's overview, rebuilt by one caller at a time when it is older than
    its time to live (the others wait for that one instead of querying too)."""

    def __init__(self, ttl: float = OVERVIEW_TTL) -> None:
        self.ttl = ttl
        self._built_at = float("-inf")
        self._sites: list[SiteOverview] = []
        self._json = b"[]"
        self._lock = threading.Lock()

    def get(self, engine: Engine) -> tuple[list[SiteOverview], bytes]:
        """The overview, and the same as JSON (served as is to callers who see every site)."""
        if time.monotonic() - self._built_at >= self.ttl:
            with self._lock:
                if time.monotonic() - self._built_at >= self.ttl:
                    self._sites = build_overview(engine)
                    self._json = _as_json.dump_json(self._sites)
                    self._built_at = time.monotonic()
        return self._sites, self._json


def overview_json(cache: OverviewCache, engine: Engine, who: Principal) -> bytes:
    """Every site ``who`` may see, at most ``cache.ttl`` old, as JSON (a list of
    ``SiteOverview``): encoded once for all who see every site."""
    sites, whole = cache.get(engine)
    scope = Scope(who)
    if scope.sites is None:
        return whole
    return _as_json.dump_json(scope.only_visible(sites, lambda s: s.site))


def build_overview(engine: Engine) -> list[SiteOverview]:
    """One pass over sites, devices, their states and the newest list versions."""
    d, s = db.devices.c, db.device_states.c
    with engine.connect() as conn:
        sites = conn.execute(select(db.sites.c.id, db.sites.c.name).order_by(db.sites.c.id)).all()
        versions = newest_versions(conn)
        devices = conn.execute(
            select(d.site, s.online, s.acl_version, s.received_at).outerjoin(
                db.device_states, (s.site == d.site) & (s.device == d.id)
            )
        ).all()
    by_site: dict[str, list[Row]] = {}
    for row in devices:
        by_site.setdefault(row.site, []).append(row)
    overview = []
    for site in sites:
        rows, version = by_site.get(site.id, []), versions.get(site.id)
        seen = [db.aware(r.received_at) for r in rows if r.received_at is not None]
        overview.append(
            SiteOverview(
                site=site.id,
                name=site.name or site.id,
                devices=len(rows),
                online=sum(1 for r in rows if r.online),
                last_seen=max(seen, default=None),
                acl_version=version,
                lagging=sum(1 for r in rows if version and (r.acl_version or 0) < version),
            )
        )
    return overview


@dataclass(frozen=True)
class SiteLive:
    """What the live overview shows of one site."""

    site: str
    name: str
    devices: int
    online: int
    lagging: int
    last_seen: str | None
    count: int | None = None
    #: The count's 90 % interval and the places free by it (hub.services.occupancy).
    low: int | None = None
    high: int | None = None
    capacity: int | None = None
    free_at_least: int | None = None
    free_at_most: int | None = None
    present: bool | None = None
    co2: int | None = None
    air: str | None = None
    entries_today: int | None = None
    visitors_today: int | None = None
    stale: bool = True


def build_live(engine: Engine) -> list[SiteLive]:
    """The whole network's live picture, from small tables only (never raw events or
    samples): the door overview, each device's newest sample and each site's today."""
    doors = build_overview(engine)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        zones = {
            site: zone for site, zone in conn.execute(select(db.sites.c.id, db.sites.c.timezone))
        }
        occupancy = conn.execute(select(db.occupancy_now)).all()
        today = _today_by_site(conn, zones, now)
    by_site: dict[str, list[Row]] = {}
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
        low, high = interval(rows)
        capacity = max((r.capacity for r in rows if r.capacity), default=None)
        free_at_least, free_at_most = free_places(capacity, low, high)
        out.append(
            SiteLive(
                site=site.site,
                name=site.name,
                devices=site.devices,
                online=site.online,
                lagging=site.lagging,
                last_seen=_latest(site.last_seen, heard.get(site.site)),
                count=sum(r._mapping["count"] for r in rows) if rows else None,
                low=low,
                high=high,
                capacity=capacity,
                free_at_least=free_at_least,
                free_at_most=free_at_most,
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


def _today_by_site(
    conn: Connection, zones: dict[str, str], now: datetime
) -> dict[str, tuple[int, int]]:
    """Entries and visitors of each site's own today (sites may sit in different zones)."""
    days = {
        site: now.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d") for site, zone in zones.items()
    }
    d = db.site_days.c
    rows = conn.execute(
        select(d.site, d.day, d.entries, d.visitors).where(d.day.in_(sorted(set(days.values()))))
    )
    return {site: (n, visitors) for site, day, n, visitors in rows if days.get(site) == day}


def visible(sites: list[SiteLive], who: Principal) -> list[dict[str, Any]]:
    """The sites ``who`` may see, as dicts; for those who may not see people, without the
    figures about people (left as None)."""
    scope = Scope(who)
    out = [asdict(s) for s in scope.only_visible(sites, lambda s: s.site)]
    if not scope.sees_people:
        out = [s | dict.fromkeys(PEOPLE_FIELDS) for s in out]
    return out
