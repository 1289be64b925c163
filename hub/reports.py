"""The funders' monthly report: how much each site was used, from the roll-ups ingest keeps.

``DEFINITIONS`` says what each figure means; the printable page and the CSV's readers get it
with the figures, so that nobody has to guess.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select

from hub import db

DEFINITIONS = {
    "visits": "one member at one site on one local calendar day, however often they tapped",
    "entries": "every allowed tap at the door",
    "unique members": "members who visited the site at least once in the month",
    "multi-site members": "of those, members who also visited another site of the network",
    "company visits": "visits by members who belonged to a company (commuters) that day",
    "occupied hours": "hours with someone present, time-weighted from the occupancy sensors",
    "median occupancy": "the median headcount over the occupied hours",
    "peak occupancy": "the highest headcount the site's doors counted",
    "covered hours": "hours of the month for which the sensors reported at all",
}


@dataclass
class SiteMonth:
    """One site's figures for one month."""

    site: str
    name: str
    month: str
    visits: int = 0
    entries: int = 0
    unique_members: int = 0
    multi_site_members: int = 0
    company_visits: int = 0
    occupied_hours: float = 0.0
    median_occupancy: float | None = None
    peak_occupancy: int | None = None
    covered_hours: float = 0.0


def parse_month(text: str) -> str:
    """``YYYY-MM``, checked; ValueError names what is wrong."""
    try:
        first = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, not {text!r}") from None
    return first.strftime("%Y-%m")


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in UTC, for a site in ``zone``."""
    first = date.fromisoformat(f"{month}-01")
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=zone)
    end = datetime(after.year, after.month, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def monthly_report(engine: Engine, month: str, sites: set[str] | None = None) -> list[SiteMonth]:
    """Every site's figures for ``month`` (only ``sites`` when given), ordered by site."""
    month = parse_month(month)
    with engine.connect() as conn:
        query = select(db.sites.c.id, db.sites.c.name, db.sites.c.timezone).order_by(db.sites.c.id)
        rows = [r for r in conn.execute(query) if sites is None or r.id in sites]
        report = {r.id: SiteMonth(site=r.id, name=r.name or r.id, month=month) for r in rows}
        _add_visits(conn, month, report)
        zones = {r.id: ZoneInfo(r.timezone) for r in rows}
        _add_occupancy(conn, month, zones, report)
    return list(report.values())


def _add_visits(conn: Connection, month: str, report: dict[str, SiteMonth]) -> None:
    mm = db.member_months.c
    totals = conn.execute(
        select(
            mm.site,
            func.sum(mm.days),
            func.sum(mm.entries),
            func.count(),
            func.sum(mm.company_days),
        )
        .where(mm.month == month)
        .group_by(mm.site)
    )
    for site, visits, entries, members, company in totals:
        if site in report:
            row = report[site]
            row.visits, row.entries, row.unique_members = int(visits), int(entries), members
            row.company_visits = int(company)
    several = (
        select(mm.member)
        .where(mm.month == month)
        .group_by(mm.member)
        .having(func.count() > 1)
        .subquery()
    )
    multi = conn.execute(
        select(mm.site, func.count())
        .join(several, several.c.member == mm.member)
        .where(mm.month == month)
        .group_by(mm.site)
    )
    for site, count in multi:
        if site in report:
            report[site].multi_site_members = count


def _add_occupancy(
    conn: Connection, month: str, zones: dict[str, ZoneInfo], report: dict[str, SiteMonth]
) -> None:
    """Per site and hour, devices added up; then the month's occupied hours, median, peak.

    All in SQL (a window function finds each site's median): a month of 500 sites is 360,000
    hourly rows, too many to carry into Python within the report's two seconds.
    """
    by_zone: dict[str, list[str]] = defaultdict(list)
    for site, zone in zones.items():
        by_zone[zone.key].append(site)
    for zone, sites in by_zone.items():
        start, end = month_bounds(month, ZoneInfo(zone))
        hourly = _hourly(start, end, sites)
        totals = conn.execute(
            select(
                hourly.c.site,
                func.sum(hourly.c.known),
                func.sum(hourly.c.occupied),
                func.max(hourly.c.peak),
            ).group_by(hourly.c.site)
        )
        for site, known, occupied, peak in totals:
            row = report[site]
            row.covered_hours = round(known / 3600, 1)
            row.occupied_hours = round(occupied / 3600, 1)
            row.peak_occupancy = int(peak)
        for site, median in conn.execute(_medians(hourly)):
            report[site].median_occupancy = round(median, 1)


def _hourly(start: datetime, end: datetime, sites: list[str]):
    h = db.occupancy_hours.c
    return (
        select(
            h.site,
            func.sum(h.person_seconds / h.known_seconds).label("mean"),
            func.max(h.occupied_seconds).label("occupied"),
            func.max(h.known_seconds).label("known"),
            func.sum(h.peak).label("peak"),
        )
        .where(h.hour >= start, h.hour < end, h.known_seconds > 0, h.site.in_(sites))
        .group_by(h.site, h.hour)
        .cte("hourly")
    )


def _medians(hourly):
    """Each site's median hourly headcount over its occupied hours (the middle one, or the
    mean of the middle two)."""
    ranked = (
        select(
            hourly.c.site,
            hourly.c.mean,
            func.row_number().over(partition_by=hourly.c.site, order_by=hourly.c.mean).label("n"),
            func.count().over(partition_by=hourly.c.site).label("of"),
        )
        .where(hourly.c.occupied > 0)
        .subquery()
    )
    middle = ranked.c.n.in_([(ranked.c.of + 1) / 2, (ranked.c.of + 2) / 2])
    return select(ranked.c.site, func.avg(ranked.c.mean)).where(middle).group_by(ranked.c.site)


def as_csv(report: list[SiteMonth]) -> str:
    """The report as CSV, one row per site, with a header row of the field names."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(SiteMonth)])
    writer.writeheader()
    for row in report:
        writer.writerow(asdict(row))
    return out.getvalue()
