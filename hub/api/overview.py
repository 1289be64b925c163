"""The network at a glance: each site's doors online, last seen, and access-list lag."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hub.http.deps import Caller, Overview, Store
from hub.services.overview import SiteOverview, overview_json

router = APIRouter(tags=["overview"])


@router.get("/overview", response_model=list[SiteOverview])
def overview(store: Store, who: Caller, cache: Overview) -> Response:
    """Every site the caller may see, at most a second old."""
    return Response(overview_json(cache, store, who), media_type="application/json")
