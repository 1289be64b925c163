"""The network at a glance: each site's doors online, last seen, and access-list lag.

Every operator's phone polls this, so it is computed once for the whole network at most every
``OVERVIEW_TTL`` seconds and then only filtered for the caller: a thousand polling screens cost
the store one query a second.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Engine, select

from hub import db
from hub.access_compiler import newest_versions
from hub.api.deps import Caller, Store
from hub.auth import Role

router = APIRouter(tags=["overview"])
#: How stale the overview may be, in seconds (device states arrive at most this often anyway).
OVERVIEW_TTL = 1.0


class SiteOverview(BaseModel):
    site: str
    name: str
    devices: int
    online: int
    last_seen: datetime | None
    acl_version: int | None
    lagging: int


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
    by_site: dict[str, list] = {}
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


_as_json = TypeAdapter(list[SiteOverview])


@router.get("/overview", response_model=list[SiteOverview])
def overview(request: Request, store: Store, who: Caller) -> Response:
    """Every site the caller may see, at most a second old."""
    sites, whole = request.app.state.overview.get(store)
    if who.role == Role.SITE_OPERATOR:
        whole = _as_json.dump_json([s for s in sites if s.site in who.sites])
    return Response(whole, media_type="application/json")
