"""The funders' monthly report over the API: JSON, or CSV to download."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from hub.http.deps import Caller, Store
from hub.http.responses import csv_download
from hub.services import reports

router = APIRouter(tags=["reports"])
#: ASCII digits only: ``\d`` takes any script's, and the month goes into a file name's header.
Month = Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")]


@router.get("/reports/monthly")
def monthly(store: Store, who: Caller, month: Month, site: str | None = None) -> dict[str, Any]:
    """Each site's visits, members and occupancy for a month, with what each figure means."""
    rows = reports.monthly_report(store, who, month, site)
    return {
        "month": month,
        "definitions": reports.DEFINITIONS,
        "sites": [asdict(r) for r in rows],
    }


@router.get("/reports/monthly.csv", response_class=Response)
def monthly_csv(store: Store, who: Caller, month: Month, site: str | None = None) -> Response:
    """The same as CSV, one row per site, served as a download."""
    rows = reports.monthly_report(store, who, month, site)
    return csv_download(reports.as_csv(rows), f"hafen-{site or 'network'}-{month}.csv")
