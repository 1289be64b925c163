"""A site's page: now, air, doors, recent door events; and its two charts as SVG pictures."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hub.auth import Principal
from hub.http.deps import Store
from hub.services import occupancy, overview
from hub.services.occupancy import DayCurve
from hub.services.site_page import site_page
from hub.web import charts
from hub.web.deps import Charts, Live
from hub.web.live import LiveFeed
from hub.web.session import PREFIX, Viewer
from hub.web.templating import page

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/sites/{site}")
def site_view(request: Request, site: str, store: Store, who: Viewer, live: Live) -> HTMLResponse:
    shown = site_page(store, who, site)
    context = {
        "site": shown.site,
        "devices": shown.devices,
        "events": shown.events,
        "co2": shown.air,
        "now": _now(live, who, site),
        "stamp": int(time.time() // 60),  # the day chart's address changes each minute
        "site_zone": shown.zone,
    }
    return page(request, "site.html", who, **context)


def _now(live: LiveFeed, who: Principal, site: str) -> dict[str, Any] | None:
    """The site's card of the live overview, as ``who`` may see it."""
    mine = [s for s in live.current() if s.site == site]
    return overview.visible(mine, who)[0] if mine else None


def _svg(svg: bytes) -> Response:
    headers = {"Cache-Control": "private, max-age=60"}
    return Response(svg, media_type="image/svg+xml", headers=headers)


@router.get("/sites/{site}/today.svg")
def today_chart(site: str, store: Store, who: Viewer, cache: Charts) -> Response:
    occupancy.require_charts(who, site)  # the check, even when the picture is cached

    def render(curve: DayCurve) -> bytes:
        return charts.day_curve(curve.times, curve.counts, curve.capacity, "Today")

    fetch = partial(occupancy.day_curve, store, who, site)
    return _svg(cache.get(("today", site), 60, fetch, render))


@router.get("/sites/{site}/week.svg")
def week_chart(site: str, store: Store, who: Viewer, cache: Charts) -> Response:
    occupancy.require_charts(who, site)  # the check, even when the picture is cached

    def render(cells: list[list[float | None]]) -> bytes:
        title = f"A usual week (last {occupancy.HEATMAP_WEEKS} weeks)"
        return charts.week_heatmap(cells, title)

    fetch = partial(occupancy.usual_week, store, who, site)
    return _svg(cache.get(("week", site), 600, fetch, render))
