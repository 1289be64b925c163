"""The funders' monthly report over the API: JSON, or CSV to download."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from hub import reports
from hub.api.deps import Caller, Store
from hub.auth import Principal, Role

router = APIRouter(tags=["reports"])
Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


def report_for(store, who: Principal, month: str, site: str | None) -> list[reports.SiteMonth]:
    """The sites the caller may see (all, for network admins), or just ``site``."""
    if who.role == Role.TECHNICIAN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
    sites = None if who.role == Role.NETWORK_ADMIN else set(who.sites)
    if site is not None:
        if sites is not None and site not in sites:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")
        sites = {site}
    try:
        rows = reports.monthly_report(store, month, sites)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if site is not None and not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")
    return rows


@router.get("/reports/monthly")
def monthly(store: Store, who: Caller, month: Month, site: str | None = None) -> dict:
    """Each site's visits, members and occupancy for a month, with what each figure means."""
    rows = report_for(store, who, month, site)
    return {
        "month": month,
        "definitions": reports.DEFINITIONS,
        "sites": [asdict(r) for r in rows],
    }


@router.get("/reports/monthly.csv", response_class=Response)
def monthly_csv(store: Store, who: Caller, month: Month, site: str | None = None) -> Response:
    """The same as CSV, one row per site, served as a download."""
    rows = report_for(store, who, month, site)
    return csv_download(rows, f"hafen-{site or 'network'}-{month}.csv")


def csv_download(rows: list[reports.SiteMonth], filename: str) -> Response:
    """The report as a CSV file the browser saves as ``filename``."""
    return Response(
        reports.as_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
