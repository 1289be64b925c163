"""Occupancy of a site, now and over time (see hub.services.occupancy for how it is weighed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.http.deps import Caller, Store
from hub.services import occupancy
from hub.services.bounds import Instant
from hub.services.occupancy import Bucket, OccupancyNow, Resolution

router = APIRouter(tags=["occupancy"])


@router.get("/sites/{site}/occupancy", response_model=OccupancyNow)
def occupancy_now(site: str, store: Store, who: Caller) -> OccupancyNow:
    """The newest sample of each of the site's devices, combined."""
    return occupancy.occupancy_now(store, who, site)


@router.get("/sites/{site}/occupancy/history", response_model=list[Bucket])
def occupancy_history(
    site: str,
    store: Store,
    who: Caller,
    since: Instant,
    until: Instant | None = None,
    resolution: Annotated[Resolution, Query()] = "hour",
) -> list[Bucket]:
    """Time-weighted occupancy per bucket between ``since`` and ``until`` (default now)."""
    return occupancy.occupancy_history(store, who, site, since, until, resolution)
