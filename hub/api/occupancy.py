"""Occupancy of a site, now and over time, from the samples its devices send.

A site's count is the sum over its devices (each counts its own door's flows); rooms and CO2
sensors are named per device. History is time-weighted: a sample holds until the next one, for
at most ``HOLD`` (a device that went quiet is unknown, not empty). Buckets are minutes, hours
or days in the site's own time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import func, select

from hub import db
from hub.api.deps import Caller, Store, site_zone
from hub.timeline import HOLD, integrate

router = APIRouter(tags=["occupancy"])
#: Buckets one request may ask for (a month of hours is 744).
MAX_BUCKETS = 2_000
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


class OccupancyNow(BaseModel):
    site: str
    count: int | None
    capacity: int | None
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


@router.get("/sites/{site}/occupancy", response_model=OccupancyNow)
def occupancy_now(site: str, store: Store, who: Caller) -> OccupancyNow:
    """The newest sample of each of the site's devices, combined."""
    o = db.occupancy_samples.c
    newest = (
        select(o.device, func.max(o.at).label("at")).where(o.site == site).group_by(o.device)
    ).subquery()
    with store.connect() as conn:
        site_zone(conn, who, site)
        rows = conn.execute(
            select(db.occupancy_samples)
            .join(newest, (o.device == newest.c.device) & (o.at == newest.c.at))
            .where(o.site == site)
        ).all()
    now = datetime.now(UTC)
    fresh = [r for r in rows if now - db.aware(r.at) <= HOLD]
    if not rows:
        return OccupancyNow(
            site=site,
            count=None,
            capacity=None,
            confidence=None,
            present=None,
            rooms={},
            co2={},
            at=None,
            stale=True,
        )
    use = fresh or rows
    single = len({r.device for r in use}) == 1
    return OccupancyNow(
        site=site,
        count=sum(r.count for r in use),
        capacity=max((r.capacity for r in use if r.capacity), default=None),
        confidence=min(r.confidence for r in use),
        present=any(r.present for r in use),
        rooms={_name(r, room, single): bool(v) for r in use for room, v in r.rooms.items()},
        co2={_name(r, sensor, single): v for r in use for sensor, v in r.co2.items()},
        at=max(db.aware(r.at) for r in use),
        stale=not fresh,
    )


def _name(row, part: str, single: bool) -> str:
    """A room or sensor by its own name; prefixed with its device where a site has several."""
    return part if single else f"{row.device}.{part}"


@router.get("/sites/{site}/occupancy/history", response_model=list[Bucket])
def occupancy_history(
    site: str,
    store: Store,
    who: Caller,
    since: datetime,
    until: datetime | None = None,
    resolution: Annotated[Literal["minute", "hour", "day"], Query()] = "hour",
) -> list[Bucket]:
    """Time-weighted occupancy per bucket between ``since`` and ``until`` (default now)."""
    # UTC for the store: SQLite compares the stored (UTC) text, whatever offset came in.
    since = db.aware(since).astimezone(UTC)
    until = db.aware(until or datetime.now(UTC)).astimezone(UTC)
    with store.connect() as conn:
        tz = site_zone(conn, who, site)
        starts = bucket_starts(since.astimezone(tz), until.astimezone(tz), resolution)
        o = db.occupancy_samples.c
        rows = conn.execute(
            select(o.device, o.at, o.count, o.present)
            .where(o.site == site, o.at >= starts[0].astimezone(UTC) - HOLD, o.at < until)
            .order_by(o.at)
        ).all()
    return buckets(rows, starts, until)


def bucket_starts(since: datetime, until: datetime, resolution: str) -> list[datetime]:
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
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"more than {MAX_BUCKETS} buckets: choose a coarser resolution",
            )
        if resolution == "day":  # calendar days in wall-clock time: 23 or 25 hours at DST
            t = (t.replace(tzinfo=None) + STEP["day"]).replace(tzinfo=t.tzinfo)
        else:  # hours and minutes in real time: the repeated hour in autumn is two buckets
            t = (t.astimezone(UTC) + STEP[resolution]).astimezone(t.tzinfo)
    return [*starts, t]


def buckets(rows: list, starts: list[datetime], until: datetime) -> list[Bucket]:
    """Integrate each device's step function over the buckets; add devices up."""
    by_device: dict[str, list] = {}
    for row in rows:
        by_device.setdefault(row.device, []).append(row)
    edges = [b.astimezone(UTC) for b in starts]
    per_device = [integrate(samples, edges, until) for samples in by_device.values()]
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
