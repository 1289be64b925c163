"""The fleet: every device, whether it is online, when it was last heard from, and how far
behind its site's newest access list it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from hub import db
from hub.access_compiler import newest_versions
from hub.auth import Principal
from hub.services.scope import Scope


@dataclass(frozen=True)
class FleetRow:
    site: str
    device: str
    online: bool | None  # None: never reported
    last_seen: datetime | None
    software: str | None
    acl_version: int | None
    latest_version: int | None

    @property
    def lag(self) -> int | None:
        """Access-list versions the device is behind (None while either is unknown)."""
        if self.latest_version is None or self.acl_version is None:
            return None
        return max(self.latest_version - self.acl_version, 0)


@dataclass(frozen=True)
class DeviceStatus:
    """One device of a site, as its page shows it."""

    device: str
    online: bool | None
    software: str | None
    acl_version: int | None
    last_seen: datetime | None


def fleet_rows(engine: Engine, who: Principal) -> list[FleetRow]:
    """The devices at the sites ``who`` may see: offline first, then by site and device."""
    d, s, n = db.devices.c, db.device_states.c, db.occupancy_now.c
    query = (
        select(d.site, d.id, s.online, s.received_at, s.software, s.acl_version, n.at)
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .outerjoin(db.occupancy_now, (n.site == d.site) & (n.device == d.id))
    )
    sites = Scope(who).sites
    if sites is not None:
        query = query.where(d.site.in_(sorted(sites)))
    with engine.connect() as conn:
        latest = newest_versions(conn)
        rows = [
            FleetRow(r[0], r[1], r[2], last_heard(r[3], r[6]), r[4], r[5], latest.get(r[0]))
            for r in conn.execute(query)
        ]
    return sorted(rows, key=lambda r: (bool(r.online), r.site, r.device))


def site_devices(conn: Connection, site: str) -> list[DeviceStatus]:
    """A site's devices by id, each with its state and when it was last heard from."""
    d, s, n = db.devices.c, db.device_states.c, db.occupancy_now.c
    rows = conn.execute(
        select(d.id, s.online, s.software, s.acl_version, s.received_at, n.at)
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .outerjoin(db.occupancy_now, (n.site == d.site) & (n.device == d.id))
        .where(d.site == site)
        .order_by(d.id)
    )
    return [
        DeviceStatus(r.id, r.online, r.software, r.acl_version, last_heard(r.received_at, r.at))
        for r in rows
    ]


def last_heard(state_at: datetime | None, sample_at: datetime | None) -> datetime | None:
    """When the device was last heard from: its state, or its newest occupancy sample."""
    known = [db.aware(t) for t in (state_at, sample_at) if t is not None]
    return max(known, default=None)
