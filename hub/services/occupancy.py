"""Occupancy of a site, now and over time, from the samples its devices send; and its air.

A site's count is the sum over its devices (each counts its own door's flows); rooms and CO2
sensors are named per device. History is time-weighted: a sample holds until the next one, for
at most ``HOLD`` (a device that went quiet is unknown, not empty). Buckets are minutes, hours
or days in the site's own time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, Row, func, select

from hub import db
from hub.auth import Principal
from hub.services.errors import Invalid
from hub.services.scope import Scope
from hub.services.sites import site_zone, visible_site
from hub.timeline import HOLD, integrate

Resolution = Literal["minute", "hour", "day"]
#: Buckets one request may ask for (a month of hours is 744).
MAX_BUCKETS = 2_000
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
#: Weeks of hourly roll-ups the hour-of-week heatmap averages over.
HEATMAP_WEEKS = 4
#: CO2 levels (ppm) above which the dashboard says to air the room (German UBA guidance:
#: below 1000 is harmless, above 2000 unacceptable).
CO2_VENTILATE, CO2_VENTILATE_NOW = 1000, 2000

_NO_BOUNDS = "None when a device counted sends none (a door from before the interval)"


class OccupancyNow(BaseModel):
    """A site's headcount now: the newest sample of each of its devices, combined.

    ``count`` adds up the devices' counts; ``low`` and ``high`` add up their 90 % intervals
    (``interval``), and ``free_at_least`` and ``free_at_most`` are the places left against
    ``capacity`` (``free_places``; none while the site is stale). ``confidence`` is the chance
    that the true count is within one of ``count``: with one device (most sites) its own; with
    several, the weakest device's. That overstates the chance for the sum (two counts each one
    off add up to two off), which is why free places rest on the interval, never on it.
    """

    site: str
    count: int | None
    low: int | None = Field(description=f"the count's 90 % interval, lower end; {_NO_BOUNDS}")
    high: int | None = Field(description=f"the count's 90 % interval, upper end; {_NO_BOUNDS}")
    capacity: int | None
    free_at_least: int | None = Field(
        description="places free unless the count is above its interval (capacity - high, "
        "not below 0): what may be promised; None without a capacity or an interval, or "
        "when stale"
    )
    free_at_most: int | None = Field(
        description="places free at best (capacity - low, not below 0); None as free_at_least"
    )
    confidence: float | None
    present: bool | None
    rooms: dict[str, bool]
    co2: dict[str, int | None]
    at: datetime | None
    stale: bool


class Bucket(BaseModel):
    start: datetime
    mean: float | None
    peak: int | None
    occupied: float | None  # share of the known time with someone there
    covered: float  # share of the bucket that samples cover


@dataclass(frozen=True)
class DayCurve:
    """A site's headcount minute by minute since local midnight (None: nothing known)."""

    times: list[datetime]
    counts: list[float | None]
    capacity: int | None


def air_hint(ppm: int | None) -> str | None:
    """``ok``, ``ventilate`` or ``ventilate now`` for a CO2 reading; None without one."""
    if ppm is None:
        return None
    if ppm > CO2_VENTILATE_NOW:
        return "ventilate now"
    return "ventilate" if ppm > CO2_VENTILATE else "ok"


def interval(rows: Sequence[Row]) -> tuple[int | None, int | None]:
    """The 90 % interval of a site's count from its devices' samples: the sums of their bounds,
    or (None, None) when any device sends none (a door from before the interval): that door's
    share has no bounds, and the others' alone would claim a certainty the site lacks.

    Where devices err independently, a sum of intervals is wider than the sum's own 90 %
    interval (widths add, spreads only in quadrature): it errs toward fewer free places.
    """
    if not rows or any(r.low is None or r.high is None for r in rows):
        return None, None
    return sum(r.low for r in rows), sum(r.high for r in rows)


def free_places(
    capacity: int | None, low: int | None, high: int | None
) -> tuple[int | None, int | None]:
    """The places free against ``capacity`` given the count's 90 % interval: at least
    ``capacity - high`` and at most ``capacity - low``, never below 0; (None, None) without a
    capacity or an interval.

    What may be promised is the first: "free desks now" (the booking of issue 16) must not
    offer a desk the upper bound says may be taken, and the point estimate would offer one
    whenever the count is low by one. Without an interval (a door from before it) there is no
    figure: a count with no stated error says nothing about the desk it would promise.
    """
    if capacity is None or low is None or high is None:
        return None, None
    return max(capacity - high, 0), max(capacity - low, 0)


def occupancy_now(engine: Engine, who: Principal, site: str) -> OccupancyNow:
    """The newest sample of each of the site's devices, combined (the stale ones only when
    no device is fresh)."""
    o = db.occupancy_samples.c
    newest = (
        select(o.device, func.max(o.at).label("at")).where(o.site == site).group_by(o.device)
    ).subquery()
    with engine.connect() as conn:
        site_zone(conn, who, site)
        rows = conn.execute(
            select(db.occupancy_samples)
            .join(newest, (o.device == newest.c.device) & (o.at == newest.c.at))
            .where(o.site == site)
        ).all()
    if not rows:
        return OccupancyNow(
            site=site,
            count=None,
            low=None,
            high=None,
            capacity=None,
            free_at_least=None,
            free_at_most=None,
            confidence=None,
            present=None,
            rooms={},
            co2={},
            at=None,
            stale=True,
        )
    now = datetime.now(UTC)
    fresh = [r for r in rows if now - db.aware(r.at) <= HOLD]
    use = fresh or rows
    single = len({r.device for r in use}) == 1
    low, high = interval(use)
    capacity = max((r.capacity for r in use if r.capacity), default=None)
    # From stale samples only (no device heard within the hold) nothing is free *now*.
    free_at_least, free_at_most = free_places(capacity, low, high) if fresh else (None, None)
    return OccupancyNow(
        site=site,
        count=sum(r._mapping["count"] for r in use),  # r.count: tuple's method, to mypy
        low=low,
        high=high,
        capacity=capacity,
        free_at_least=free_at_least,
        free_at_most=free_at_most,
        confidence=min(r.confidence for r in use),
        present=any(r.present for r in use),
        rooms={_name(r.device, room, single): bool(v) for r in use for room, v in r.rooms.items()},
        co2={_name(r.device, sensor, single): v for r in use for sensor, v in r.co2.items()},
        at=max(db.aware(r.at) for r in use),
        stale=not fresh,
    )


def _name(device: str, part: str, single: bool) -> str:
    """A room or sensor by its own name; prefixed with its device where a site has several."""
    return part if single else f"{device}.{part}"


def occupancy_history(
    engine: Engine,
    who: Principal,
    site: str,
    since: datetime,
    until: datetime | None = None,
    resolution: Resolution = "hour",
) -> list[Bucket]:
    """Time-weighted occupancy per bucket between ``since`` and ``until`` (default now)."""
    # UTC for the store: SQLite compares the stored (UTC) text, whatever offset came in.
    since = db.aware(since).astimezone(UTC)
    until = db.aware(until or datetime.now(UTC)).astimezone(UTC)
    with engine.connect() as conn:
        tz = site_zone(conn, who, site)
        starts = bucket_starts(since.astimezone(tz), until.astimezone(tz), resolution)
        rows = samples(conn, site, starts[0].astimezone(UTC), until)
    return buckets(rows, starts, until)


def samples(conn: Connection, site: str, since: datetime, until: datetime) -> list[Row]:
    """The site's samples that weigh on [since, until): from one ``HOLD`` before ``since``
    (a sample holds that long), in time order, with what weighting needs."""
    o = db.occupancy_samples.c
    return list(
        conn.execute(
            select(o.device, o.at, o.count, o.present)
            .where(o.site == site, o.at >= since - HOLD, o.at < until)
            .order_by(o.at)
        ).all()
    )


def bucket_starts(since: datetime, until: datetime, resolution: Resolution) -> list[datetime]:
    """Bucket boundaries in local time (a day is a calendar day, 23 or 25 hours at DST)."""
    if resolution == "day":
        first = since.replace(hour=0, minute=0, second=0, microsecond=0)
    elif resolution == "hour":
        first = since.replace(minute=0, second=0, microsecond=0)
    else:
        first = since.replace(second=0, microsecond=0)
    starts, t = [], first
    while t < until:
        starts.append(t)
        if len(starts) > MAX_BUCKETS:
            raise Invalid(f"more than {MAX_BUCKETS} buckets: choose a coarser resolution")
        if resolution == "day":  # calendar days in wall-clock time: 23 or 25 hours at DST
            t = (t.replace(tzinfo=None) + STEP["day"]).replace(tzinfo=t.tzinfo)
        else:  # hours and minutes in real time: the repeated hour in autumn is two buckets
            t = (t.astimezone(UTC) + STEP[resolution]).astimezone(t.tzinfo)
    return [*starts, t]


def buckets(rows: Sequence[Row], starts: list[datetime], until: datetime) -> list[Bucket]:
    """Integrate each device's step function over the buckets; add devices up."""
    by_device: dict[str, list[Row]] = {}
    for row in rows:
        by_device.setdefault(row.device, []).append(row)
    edges = [b.astimezone(UTC) for b in starts]
    per_device = [integrate(device_rows, edges, until) for device_rows in by_device.values()]
    out = []
    for k in range(len(edges) - 1):
        cells = [cells[k] for cells in per_device if cells[k].known_seconds > 0]
        span = max((min(edges[k + 1], until) - edges[k]).total_seconds(), 1e-9)
        known = sum(c.known_seconds for c in cells)
        out.append(
            Bucket(
                start=edges[k],
                mean=round(sum(c.person_seconds / c.known_seconds for c in cells), 2)
                if cells
                else None,
                peak=sum(c.peak or 0 for c in cells) if cells else None,
                occupied=round(sum(c.occupied_seconds for c in cells) / known, 3)
                if cells
                else None,
                covered=round(min(known / max(len(per_device), 1) / span, 1.0), 3),
            )
        )
    return out


def require_charts(who: Principal, site: str) -> None:
    """Whether ``who`` may see the site's occupancy charts, decided without the store: a
    cached picture is served after this check alone (the chart functions make it too)."""
    scope = Scope(who)
    scope.require_people("your role may not see this")
    scope.require_site(site)


def day_curve(engine: Engine, who: Principal, site: str) -> DayCurve:
    """Minute by minute from the site's local midnight to now: the mean headcount, for the
    site page's chart."""
    require_charts(who, site)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        row = visible_site(conn, who, site)
        zone = ZoneInfo(row.timezone)
        midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        starts = bucket_starts(midnight, now.astimezone(zone), "minute")
        rows = samples(conn, site, starts[0].astimezone(UTC), now)
    cells = buckets(rows, starts, now)
    return DayCurve(
        [c.start.astimezone(zone) for c in cells], [c.mean for c in cells], row.capacity
    )


def usual_week(
    engine: Engine, who: Principal, site: str, weeks: int = HEATMAP_WEEKS
) -> list[list[float | None]]:
    """Mean headcount per local weekday (rows, Monday first) and hour over the last weeks,
    devices added up, from the hourly roll-up."""
    require_charts(who, site)
    h = db.occupancy_hours.c
    since = datetime.now(UTC) - timedelta(weeks=weeks)
    with engine.connect() as conn:
        zone = ZoneInfo(visible_site(conn, who, site).timezone)
        rows = conn.execute(
            select(h.hour, func.sum(h.person_seconds / h.known_seconds))
            .where(h.site == site, h.hour >= since, h.known_seconds > 0)
            .group_by(h.hour)
        ).all()
    sums = [[0.0] * 24 for _ in range(7)]
    counts = [[0] * 24 for _ in range(7)]
    for hour, mean in rows:
        local = db.aware(hour).astimezone(zone)
        sums[local.weekday()][local.hour] += mean
        counts[local.weekday()][local.hour] += 1
    return [
        [round(sums[d][h] / counts[d][h], 2) if counts[d][h] else None for h in range(24)]
        for d in range(7)
    ]


def air_now(conn: Connection, site: str) -> dict[str, tuple[int | None, str | None]]:
    """Each CO2 sensor's newest reading (None: the sensor failed) and what to do about it,
    from fresh samples only; named per device where the site has several."""
    n = db.occupancy_now.c
    now = datetime.now(UTC)
    readings: dict[str, tuple[int | None, str | None]] = {}
    rows = conn.execute(select(n.device, n.at, n.co2).where(n.site == site)).all()
    for row in rows:
        if now - db.aware(row.at) <= HOLD:
            for sensor, ppm in row.co2.items():
                readings[_name(row.device, sensor, len(rows) == 1)] = (ppm, air_hint(ppm))
    return readings
