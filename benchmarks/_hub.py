"""The hub's registry for benchmarks that run ingest: ingest believes only the sites and
devices the hub registered, and allowed entries only of members with access at the site
(hub.ingest.screen), so a benchmark registers what it runs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from hub import db

#: The network-wide plan benchmark members get.
PLAN = "bench-everywhere"


def register(
    engine: Engine, devices: dict[str, Iterable[str]], members: Iterable[str] = ()
) -> None:
    """Register each site's devices (``site -> device ids``) and give ``members`` the
    network-wide plan, in one transaction; what exists already is left as it is."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        sites = set(conn.scalars(select(db.sites.c.id)))
        known = set(conn.execute(select(db.devices.c.site, db.devices.c.id)).tuples())
        new_sites = [{"id": s, "timezone": "Europe/Berlin"} for s in devices if s not in sites]
        if new_sites:
            conn.execute(insert(db.sites), new_sites)
        rows = [
            {"site": site, "id": device, "kind": "door", "created_at": now}
            for site, ids in devices.items()
            for device in ids
            if (site, device) not in known
        ]
        if rows:
            conn.execute(insert(db.devices), rows)
        people = sorted(set(members) - set(conn.scalars(select(db.members.c.id))))
        if not people:
            return
        if conn.scalar(select(db.plans.c.id).where(db.plans.c.id == PLAN)) is None:
            conn.execute(insert(db.plans).values(id=PLAN, sites=None, windows=None))
        conn.execute(insert(db.members), [{"id": m, "blocked": False} for m in people])
        conn.execute(insert(db.grants), [{"member_id": m, "plan_id": PLAN} for m in people])
