"""The fleet page's rows: every door the user may see, online or not, and how far behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from hub import db
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
    d, s, v = db.devices.c, db.device_states.c, db.acl_versions.c
    latest = select(v.site, func.max(v.version).label("version")).group_by(v.site).subquery()
    query = (
        select(d.site, d.id, s.online, s.received_at, s.software, s.acl_version, latest.c.version)
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .outerjoin(latest, latest.c.site == d.site)
    )
    if who.role == Role.SITE_OPERATOR:
        query = query.where(d.site.in_(sorted(who.sites)))
    with engine.connect() as conn:
        rows = [
            FleetRow(r[0], r[1], r[2], db.aware(r[3]), r[4], r[5], r[6])
            for r in conn.execute(query)
        ]
    return sorted(rows, key=lambda r: (bool(r.online), r.site, r.device))
