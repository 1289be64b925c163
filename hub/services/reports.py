"""The funders' monthly report, for the sites a viewer may see (hub/reports.py computes it)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from hub import db, reports as monthly
from hub.auth import Principal
from hub.reports import SiteMonth
from hub.services.errors import Invalid, NotFound
from hub.services.scope import Scope

DEFINITIONS = monthly.DEFINITIONS


def monthly_report(
    engine: Engine, who: Principal, month: str, site: str | None = None
) -> list[SiteMonth]:
    """Each site's figures for ``month`` (``YYYY-MM``): the sites ``who`` may see, or just
    ``site``. Technicians get none: the figures are about people."""
    scope = Scope(who)
    scope.require_people()
    sites = None if scope.sites is None else set(scope.sites)
    if site is not None:
        scope.require_site(site)
        sites = {site}
    try:
        rows = monthly.monthly_report(engine, month, sites)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if site is not None and not rows:
        raise NotFound(f"no site {site!r}")
    return rows


def current_month(engine: Engine, who: Principal) -> str:
    """The month now where ``who``'s sites are: the latest of their local months (in the
    first hours of a month in Berlin it is still the last one in UTC, but no longer at the
    door)."""
    query = select(db.sites.c.timezone).distinct()
    sites = Scope(who).sites
    if sites is not None:
        query = query.where(db.sites.c.id.in_(sites))
    with engine.connect() as conn:
        zones = conn.scalars(query).all() or ["UTC"]
    now = datetime.now(UTC)
    return max(now.astimezone(ZoneInfo(zone)).strftime("%Y-%m") for zone in zones)


def as_csv(rows: list[SiteMonth]) -> str:
    """The report as CSV text, one row per site (cells a spreadsheet would run are inert)."""
    return monthly.as_csv(rows)
