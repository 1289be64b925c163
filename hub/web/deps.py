"""The dashboard's own dependencies: its live feed and its chart cache (the hub's shared ones,
the store and the signed-in user, are hub.http.deps's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hub.web.charts import ChartCache
from hub.web.live import LiveFeed


async def get_live(request: Request) -> LiveFeed:
    return request.app.state.live


async def get_charts(request: Request) -> ChartCache:
    return request.app.state.charts


Live = Annotated[LiveFeed, Depends(get_live)]
Charts = Annotated[ChartCache, Depends(get_charts)]
