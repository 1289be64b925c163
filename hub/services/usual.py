"""How full a site usually is at an hour of a weekday: the mean headcount at that local hour
on that weekday over the last weeks, from the hourly roll-up that ingest keeps (the same
figures as the site page's usual week, ``hub.services.occupancy.usual_week``), for every site
at once.

The figures move by an hour's worth of four weeks' data at a time, so they are computed once
per weekday and kept for ``USUAL_TTL`` seconds: finding a space asks for them on every
request, and reading four weeks of a weekday for 500 sites costs far more than the rest of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select

from hub import db
from hub.services.occupancy import HEATMAP_WEEKS

#: How long a weekday's usual figures are kept, in seconds.
USUAL_TTL = 600.0
#: Shares of a site's places (its capacity, else its desks) that the usual headcount is
#: called by: below the first quiet, then half full, busy, and from the last on full.
HALF_FULL_FROM, BUSY_FROM, FULL_FROM = 0.35, 0.7, 0.9

Level = Literal["quiet", "half full", "busy", "full"]
#: A site's mean headcount at each local hour (0 to 23) of one weekday; None: no data.
Hours = list[float | None]


class Usually(BaseModel):
    """What a site is usually like at an hour of a weekday."""

    level: Level | None = Field(
        description="quiet, half full, busy or full against the site's capacity (else its"
        " desks); None for a site with neither"
    )
    people: float = Field(description="the mean headcount then over the last weeks")
    weekday: int = Field(description="0 is Monday")
    hour: int = Field(description="the local hour it starts at, 0 to 23")


def level(people: float, places: int | None) -> Level | None:
    """The word for ``people`` among ``places``."""
    if not places:
        return None
    share = people / places
    if share >= FULL_FROM:
        return "full"
    if share >= BUSY_FROM:
        return "busy"
    return "half full" if share >= HALF_FULL_FROM else "quiet"


def usually(hours: Hours | None, hour: int, weekday: int, places: int | None) -> Usually | None:
    """The hint for one local hour, if there are figures for it."""
    if hours is None or hours[hour] is None:
        return None
    people = hours[hour] or 0.0
    return Usually(level=level(people, places), people=people, weekday=weekday, hour=hour)


class UsualWeekdays:
    """Each site's usual headcount per hour of one weekday, computed for all sites at once
    and kept ``ttl`` seconds per weekday (one caller computes, the others wait for it)."""

    def __init__(self, ttl: float = USUAL_TTL, weeks: int = HEATMAP_WEEKS) -> None:
        self.ttl, self.weeks = ttl, weeks
        self._kept: dict[tuple[int, frozenset[str]], tuple[float, dict[str, Hours]]] = {}
        self._lock = threading.Lock()

    def get(
        self, engine: Engine, zones: Mapping[str, str], weekday: int, now: datetime
    ) -> dict[str, Hours]:
        """The figures of ``weekday`` (0 is Monday) for the sites of ``zones`` (site -> time
        zone) that have any."""
        key = (weekday, frozenset(zones.values()))
        kept = self._kept.get(key)
        if kept is None or time.monotonic() - kept[0] >= self.ttl:
            with self._lock:
                kept = self._kept.get(key)
                if kept is None or time.monotonic() - kept[0] >= self.ttl:
                    kept = (time.monotonic(), self._compute(engine, zones, weekday, now))
                    self._kept[key] = kept
        return kept[1]

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def _compute(
        self, engine: Engine, zones: Mapping[str, str], weekday: int, now: datetime
    ) -> dict[str, Hours]:
        """One grouped query over the roll-up's hours that fall on ``weekday`` in any of the
        sites' zones (an index probe per hour); devices added up, weeks averaged."""
        hours = _weekday_hours({ZoneInfo(z) for z in set(zones.values())}, weekday, now, self.weeks)
        if not hours:
            return {}
        h = db.occupancy_hours.c
        with engine.connect() as conn:
            rows = conn.execute(
                select(h.site, h.hour, func.sum(h.person_seconds / h.known_seconds))
                .where(h.hour.in_(sorted(hours)), h.known_seconds > 0)
                .group_by(h.site, h.hour)
            ).all()
        sums: dict[str, list[float]] = {}
        counts: dict[str, list[int]] = {}
        site_zones = {site: ZoneInfo(zone) for site, zone in zones.items()}
        for site, hour, people in rows:
            zone = site_zones.get(site)
            if zone is None:
                continue
            local = db.aware(hour).astimezone(zone)
            if local.weekday() != weekday:  # a weekday in another site's zone
                continue
            sums.setdefault(site, [0.0] * 24)[local.hour] += people
            counts.setdefault(site, [0] * 24)[local.hour] += 1
        return {
            site: [
                round(total / count, 2) if count else None
                for total, count in zip(sums[site], counts[site], strict=True)
            ]
            for site in sums
        }


def _weekday_hours(zones: set[ZoneInfo], weekday: int, now: datetime, weeks: int) -> set[datetime]:
    """The UTC hours of the last ``weeks`` weeks before ``now`` that are on ``weekday`` in one
    of ``zones``."""
    now = now.astimezone(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(weeks=weeks)
    found = set()
    while hour < now:
        if any(hour.astimezone(zone).weekday() == weekday for zone in zones):
            found.add(hour)
        hour += timedelta(hours=1)
    return found
