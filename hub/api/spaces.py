"""Finding a space: the network's sites near a place, with desks free now and on a day."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from hub.http.deps import Anyone, SpacesFinder, Store
from hub.services.places import MAX_QUERY
from hub.services.space_models import MAX_LIMIT, Spaces, SpacesQuery
from hub.services.spaces import find_spaces

router = APIRouter(tags=["spaces"])


@router.get("/spaces", response_model=Spaces)
def spaces(
    store: Store,
    finder: SpacesFinder,
    _: Anyone,
    lat: Annotated[float | None, Query(ge=-90, le=90, description="latitude, WGS84")] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180, description="longitude, WGS84")] = None,
    near: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_QUERY, description="a postcode or a town, for lat/lon"),
    ] = None,
    day: Annotated[date | None, Query(description="YYYY-MM-DD; default: today")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    bookable: Annotated[bool, Query(description="only sites that take desk bookings")] = False,
) -> Response:
    """The network's spaces nearest a place (``lat`` and ``lon``, or ``near``), each with its
    desks free now and on ``day``, whether it is open, and how full it usually is. Anyone
    signed in may ask: the answer holds nothing about anyone."""
    query = SpacesQuery(
        latitude=lat, longitude=lon, near=near, day=day, limit=limit, bookable=bookable
    )
    # The JSON the service put together from each space's, made once (``Spaces`` documents
    # it): FastAPI would validate all 500 spaces again and encode them on every request.
    return Response(find_spaces(store, finder, query).json(), media_type="application/json")
