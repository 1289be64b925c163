"""The funders' monthly report: how much each site was used, from the roll-ups ingest keeps.

``DEFINITIONS`` says what each figure means; the printable page and the CSV's readers get it
with the figures, so that nobody has to guess.
"""

from __future__ import annotations

import csv
import io
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


#: The months any report or statement can be about (a month's end must stay a valid date).
FIRST_YEAR, LAST_YEAR = 1970, 9998


def parse_month(text: str) -> str:
    """``YYYY-MM``, checked; ValueError names what is wrong."""
    try:
        if not text.isascii():  # strptime reads a year in any script's digits
            raise ValueError
        first = datetime.strptime(text, "%Y-%m")
        if not FIRST_YEAR <= first.year <= LAST_YEAR:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"month must be YYYY-MM between {FIRST_YEAR} and {LAST_YEAR}, not {text!r}"
        ) from None
    # Formatted by hand: strftime leaves years before 1000 unpadded on glibc ("1-01").
    return f"{first.year:04d}-{first.month:02d}"


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
        query = select(db.sites.c.id, db.sites.c.name).order_by(db.sites.c.id)
        rows = [r for r in conn.execute(query) if sites is None or r.id in sites]
        report = {r.id: SiteMonth(site=r.id, name=r.name or r.id, month=month) for r in rows}
        _add_visits(conn, month, report)
        _add_occupancy(conn, month, report)
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


def _add_occupancy(conn: Connection, month: str, report: dict[str, SiteMonth]) -> None:
    """From the monthly roll-up ingest keeps (hub/rollups.py): one row per site."""
    o = db.occupancy_months.c
    for row in conn.execute(select(db.occupancy_months).where(o.month == month)):
        site = report.get(row.site)
        if site is not None:
            site.covered_hours = round(row.covered_seconds / 3600, 1)
            site.occupied_hours = round(row.occupied_seconds / 3600, 1)
            site.median_occupancy = None if row.median is None else round(row.median, 1)
            site.peak_occupancy = row.peak


def as_csv(report: list[SiteMonth]) -> str:
    """The report as CSV, one row per site, with a header row of the field names."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(SiteMonth)])
    writer.writeheader()
    for row in report:
        writer.writerow({k: inert_cell(v) for k, v in asdict(row).items()})
    return out.getvalue()


def inert_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return first) gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
