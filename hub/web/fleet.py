"""The fleet page's rows: every door the user may see, online or not, and how far behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from hub import db
from hub.access_compiler import newest_versions
from hub.auth import Principal, Role


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


def fleet_rows(engine: Engine, who: Principal) -> list[FleetRow]:
    """Offline doors first, then by site and device."""
    d, s, n = db.devices.c, db.device_states.c, db.occupancy_now.c
    query = (
        select(d.site, d.id, s.online, s.received_at, s.software, s.acl_version, n.at)
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .outerjoin(db.occupancy_now, (n.site == d.site) & (n.device == d.id))
    )
    if who.role == Role.SITE_OPERATOR:
        query = query.where(d.site.in_(sorted(who.sites)))
    with engine.connect() as conn:
        latest = newest_versions(conn)
        rows = [
            FleetRow(r[0], r[1], r[2], last_heard(r[3], r[6]), r[4], r[5], latest.get(r[0]))
            for r in conn.execute(query)
        ]
    return sorted(rows, key=lambda r: (bool(r.online), r.site, r.device))


def last_heard(state_at: datetime | None, sample_at: datetime | None) -> datetime | None:
    """When the device was last heard from: its state, or its newest occupancy sample."""
    known = [db.aware(t) for t in (state_at, sample_at) if t is not None]
    return max(known, default=None)
