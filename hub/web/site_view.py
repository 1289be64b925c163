"""What a site's page shows: its doors, today's curve, its usual week and recent door events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from hafen.protocol import EventKind
from hub import db
from hub.api.occupancy import bucket_starts, buckets
from hub.timeline import HOLD
from hub.web.fleet import last_heard

#: Weeks of hourly roll-ups the hour-of-week heatmap averages over.
HEATMAP_WEEKS = 4


@dataclass(frozen=True)
class Device:
    device: str
    online: bool | None
    software: str | None
    acl_version: int | None
    last_seen: datetime | None


@dataclass(frozen=True)
class DoorEvent:
    at: datetime
    device: str
    what: str
    outcome: str  # ok, denied, alarm, fault, info
    who: str | None


def site_row(conn: Connection, site: str):
    return conn.execute(select(db.sites).where(db.sites.c.id == site)).one_or_none()


def devices(conn: Connection, site: str) -> list[Device]:
    d, s, n = db.devices.c, db.device_states.c, db.occupancy_now.c
    rows = conn.execute(
        select(d.id, s.online, s.software, s.acl_version, s.received_at, n.at)
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .outerjoin(db.occupancy_now, (n.site == d.site) & (n.device == d.id))
        .where(d.site == site)
        .order_by(d.id)
    )
    return [
        Device(r.id, r.online, r.software, r.acl_version, last_heard(r.received_at, r.at))
        for r in rows
    ]


def co2_now(conn: Connection, site: str) -> dict[str, int | None]:
    """Each CO2 sensor's newest reading (None: the sensor failed), from fresh samples only."""
    n = db.occupancy_now.c
    now = datetime.now(UTC)
    readings: dict[str, int | None] = {}
    rows = conn.execute(select(n.device, n.at, n.co2).where(n.site == site)).all()
    for row in rows:
        if now - db.aware(row.at) <= HOLD:
            for sensor, ppm in row.co2.items():
                readings[sensor if len(rows) == 1 else f"{row.device}.{sensor}"] = ppm
    return readings


def today(conn: Connection, site: str, zone: ZoneInfo) -> tuple[list[datetime], list]:
    """Minute by minute from local midnight to now: times, and the mean headcount or None."""
    now = datetime.now(UTC)
    midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = bucket_starts(midnight, now.astimezone(zone), "minute")
    o = db.occupancy_samples.c
    rows = conn.execute(
        select(o.device, o.at, o.count, o.present)
        .where(o.site == site, o.at >= starts[0].astimezone(UTC) - HOLD, o.at < now)
        .order_by(o.at)
    ).all()
    cells = buckets(rows, starts, now)
    return [c.start.astimezone(zone) for c in cells], [c.mean for c in cells]


def hour_of_week(
    conn: Connection, site: str, zone: ZoneInfo, weeks: int = HEATMAP_WEEKS
) -> list[list[float | None]]:
    """Mean headcount per local weekday and hour over the last weeks (devices added up)."""
    h = db.occupancy_hours.c
    since = datetime.now(UTC) - timedelta(weeks=weeks)
    rows = conn.execute(
        select(h.hour, func.sum(h.person_seconds / h.known_seconds))
        .where(h.site == site, h.hour >= since, h.known_seconds > 0)
        .group_by(h.hour)
    )
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


#: What a technician sees of a door's history: its own state and faults, never who came or went.
DEVICE_KINDS = tuple(
    k.value for k in (EventKind.DOOR_ALARM, EventKind.DEVICE_FAULT, EventKind.ACL_REFUSED)
)


def recent_events(conn: Connection, site: str, people: bool, limit: int = 15) -> list[DoorEvent]:
    """The newest door events with members named (never a card) when ``people``; without it,
    only the events about the doors themselves."""
    e, m = db.events.c, db.members.c
    query = (
        select(e.at, e.device, e.kind, e.data, e.member, m.name)
        .outerjoin(db.members, m.id == e.member)
        .where(e.site == site)
        .order_by(e.id.desc())
        .limit(limit)
    )
    if not people:
        query = query.where(e.kind.in_(DEVICE_KINDS))
    return [_describe(r, people) for r in conn.execute(query).all()]


def _describe(row, names: bool) -> DoorEvent:
    data, kind = row.data, row.kind
    who = (row.name or row.member) if names and row.member else None
    if kind == "door.decision":
        if data.get("allowed"):
            what, outcome = "entry", "ok"
        else:
            what, outcome = f"denied: {data.get('reason') or 'unknown'}".replace("_", " "), "denied"
    elif kind == "door.alarm":
        what = f"{data.get('alarm', '').replace('_', ' ')} {data.get('state', '')}".strip()
        outcome = "alarm" if data.get("state") == "raised" else "info"
    elif kind == "device.fault":
        broken = data.get("fault")
        what = f"{data.get('component')}: {broken or 'recovered'}"
        outcome = "fault" if broken else "info"
    else:
        what, outcome = {
            "door.exit": ("exit button", "info"),
            "door.remote_unlock": ("remote unlock", "info"),
            "acl.refused": ("access list refused", "fault"),
        }.get(kind, (kind, "info"))
    return DoorEvent(db.aware(row.at), row.device, what, outcome, who)
