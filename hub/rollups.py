"""Roll-ups that ingest keeps, in the same transaction as the events they count.

The dashboard and the funders' monthly report must answer for 500 sites and millions of events
in a second or two, so they never scan raw events: ingest adds each newly stored allowed entry
to ``visits`` (member, site, local day) and ``member_months``, and each new occupancy sample to
``occupancy_now`` and the hours it touches in ``occupancy_hours``. Only events the store did
not hold before are counted (the caller passes what its insert returned), so a redelivered
event is never counted twice, whichever worker got it.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from hafen.protocol import EventKind
from hub import db
from hub.reports import month_bounds
from hub.timeline import HOLD, integrate

HOUR = timedelta(hours=1)
#: The columns of a sample that ``occupancy_now`` keeps of each device's newest.
_NOW_COLUMNS = ("at", "count", "low", "high", "capacity", "confidence", "present", "rooms", "co2")


#: How long a site's time zone is trusted without asking the store (a corrected zone reaches
#: every ingest worker within this; the days already rolled up need ``rebuild``).
ZONE_TTL = 300.0


class Rollups:
    """Keeps the roll-ups of one store; site time zones are cached (they rarely change)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self._insert = postgresql.insert if postgres else sqlite.insert
        self._zones: dict[str, tuple[float, ZoneInfo]] = {}

    def zone(self, conn: Connection, site: str) -> ZoneInfo:
        """The site's time zone; UTC for a site the hub does not know (yet), not cached."""
        hit = self._zones.get(site)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        name = conn.scalar(select(db.sites.c.timezone).where(db.sites.c.id == site))
        if name is None:
            return ZoneInfo("UTC")
        zone = ZoneInfo(name)
        self._zones[site] = (time.monotonic() + ZONE_TTL, zone)
        return zone

    # -- visits ---------------------------------------------------------------------------

    def add_entries(self, conn: Connection, events: Iterable[dict]) -> None:
        """Count newly stored events that let a member in (allowed door decisions)."""
        entries = [
            e
            for e in events
            if e["kind"] == EventKind.ACCESS_DECISION
            and e["data"].get("allowed")
            and e["data"].get("member")
        ]
        if not entries:
            return
        names = {str(e["data"]["member"])[:64] for e in entries}
        m = db.members.c
        companies = dict(
            conn.execute(select(m.id, m.company_id).where(m.id.in_(sorted(names)))).all()
        )
        zones = {site: self.zone(conn, site) for site in {e["site"] for e in entries}}
        days: dict[tuple[str, str, str], dict] = {}
        for e in entries:
            member = str(e["data"]["member"])[:64]
            at = e["at"].astimezone(UTC)
            key = (e["site"], at.astimezone(zones[e["site"]]).strftime("%Y-%m-%d"), member)
            row = days.get(key)
            if row is None:
                days[key] = dict(
                    zip(("site", "day", "member"), key, strict=True),
                    company=companies.get(member),
                    first_at=at,
                    last_at=at,
                    entries=1,
                )
            else:
                row["first_at"], row["last_at"] = min(row["first_at"], at), max(row["last_at"], at)
                row["entries"] += 1
        self._add_days(conn, days)

    def _add_days(self, conn: Connection, days: dict[tuple[str, str, str], dict]) -> None:
        v = db.visits.c
        insert_new = (
            self._insert(db.visits).on_conflict_do_nothing().returning(v.site, v.day, v.member)
        )
        # Rows in key order throughout: concurrent workers then lock them in the same order
        # and never deadlock.
        new = {tuple(r) for r in conn.execute(insert_new, [days[k] for k in sorted(days)])}
        seen = [days[key] for key in sorted(days) if key not in new]
        if seen:  # days already counted: widen first/last, add the entries
            conn.execute(
                update(db.visits)
                .where(
                    v.site == bindparam("k_site"),
                    v.day == bindparam("k_day"),
                    v.member == bindparam("k_member"),
                )
                .values(
                    entries=v.entries + bindparam("k_entries"),
                    first_at=case(
                        (v.first_at > bindparam("k_first"), bindparam("k_first")),
                        else_=v.first_at,
                    ),
                    last_at=case(
                        (v.last_at < bindparam("k_last"), bindparam("k_last")), else_=v.last_at
                    ),
                ),
                [
                    {
                        "k_site": r["site"],
                        "k_day": r["day"],
                        "k_member": r["member"],
                        "k_entries": r["entries"],
                        "k_first": r["first_at"],
                        "k_last": r["last_at"],
                    }
                    for r in seen
                ],
            )
        months: dict[tuple[str, str, str], dict] = {}
        for key, row in days.items():
            month = (row["day"][:7], row["site"], row["member"])
            cell = months.setdefault(
                month,
                dict(zip(("month", "site", "member"), month, strict=True))
                | {"days": 0, "company_days": 0, "entries": 0},
            )
            cell["entries"] += row["entries"]
            if key in new:
                cell["days"] += 1
                cell["company_days"] += 1 if row["company"] else 0
        self._add_site_days(conn, days, new)
        mm = db.member_months
        stmt = self._insert(mm)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["month", "site", "member"],
                set_={c: mm.c[c] + stmt.excluded[c] for c in ("days", "company_days", "entries")},
            ),
            [months[k] for k in sorted(months)],
        )

    def _add_site_days(self, conn: Connection, days: dict, new: set) -> None:
        totals: dict[tuple[str, str], dict] = {}
        for key, row in days.items():
            cell = totals.setdefault(
                key[:2], {"site": key[0], "day": key[1], "entries": 0, "visitors": 0}
            )
            cell["entries"] += row["entries"]
            cell["visitors"] += 1 if key in new else 0
        sd = db.site_days
        stmt = self._insert(sd)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["day", "site"],
                set_={c: sd.c[c] + stmt.excluded[c] for c in ("entries", "visitors")},
            ),
            [totals[k] for k in sorted(totals)],
        )

    # -- occupancy ------------------------------------------------------------------------

    def add_samples(self, conn: Connection, samples: list[dict]) -> None:
        """Newly stored samples (rows as written): each device's newest, and their hours."""
        if not samples:
            return
        newest: dict[tuple[str, str], dict] = {}
        touched: dict[tuple[str, str], set[datetime]] = defaultdict(set)
        for s in samples:
            key = (s["site"], s["device"])
            if key not in newest or s["at"] > newest[key]["at"]:
                newest[key] = s
            # A sample changes its own hour and, through its hold, perhaps the next.
            touched[key].update({_hour(s["at"]), _hour(s["at"] + HOLD)})
        now = db.occupancy_now
        stmt = self._insert(now)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "device"],
                set_={c: stmt.excluded[c] for c in _NOW_COLUMNS},
                where=now.c.at < stmt.excluded.at,
            ),
            [
                {"site": k[0], "device": k[1]} | {c: newest[k][c] for c in _NOW_COLUMNS}
                for k in sorted(newest)
            ],
        )
        self._serialise(conn, sorted(touched))
        months: set[tuple[str, str]] = set()
        for (site, device), hours in sorted(touched.items()):
            self.refresh_hours(conn, site, device, sorted(hours))
            zone = self.zone(conn, site)
            months.update((site, h.astimezone(zone).strftime("%Y-%m")) for h in hours)
        for site, month in sorted(months):
            self.refresh_month(conn, site, month)

    def _serialise(self, conn: Connection, devices: list[tuple[str, str]]) -> None:
        """On PostgreSQL, one transaction at a time recomputes a device's hours and its site's
        months (two workers each with one new sample would each miss the other's); locks in
        sorted order, held to the commit."""
        if not self.postgres:
            return  # SQLite has one writer at a time anyway
        keys = sorted({_lock_key(site) for site, _ in devices})
        for key in keys:
            conn.execute(select(func.pg_advisory_xact_lock(key)))

    def refresh_hours(
        self, conn: Connection, site: str, device: str, hours: list[datetime]
    ) -> None:
        """Recompute the given UTC hours of one device from its samples (idempotent)."""
        o = db.occupancy_samples.c
        samples = conn.execute(
            select(o.at, o.count, o.present)
            .where(o.site == site, o.device == device)
            .where(o.at >= hours[0] - HOLD, o.at < hours[-1] + HOUR)
            .order_by(o.at)
        ).all()
        rows = []
        for run in _runs(hours):
            edges = [*run, run[-1] + HOUR]
            for hour, cell in zip(run, integrate(samples, edges, edges[-1]), strict=True):
                rows.append(
                    {
                        "site": site,
                        "device": device,
                        "hour": hour,
                        "person_seconds": cell.person_seconds,
                        "occupied_seconds": cell.occupied_seconds,
                        "known_seconds": cell.known_seconds,
                        "peak": cell.peak or 0,
                    }
                )
        h = db.occupancy_hours
        stmt = self._insert(h)
        values = ("person_seconds", "occupied_seconds", "known_seconds", "peak")
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "device", "hour"],
                set_={c: stmt.excluded[c] for c in values},
            ),
            rows,
        )

    def refresh_month(self, conn: Connection, site: str, month: str) -> None:
        """Recompute a site's local month from its devices' hours (added up hour by hour)."""
        start, end = month_bounds(month, self.zone(conn, site))
        h = db.occupancy_hours.c
        rows = conn.execute(
            select(h.hour, h.person_seconds, h.occupied_seconds, h.known_seconds, h.peak).where(
                h.site == site, h.hour >= start, h.hour < end, h.known_seconds > 0
            )
        )
        hours: dict[datetime, list[float]] = {}
        for hour, person, occupied, known, peak in rows:
            cell = hours.setdefault(hour, [0.0, 0.0, 0.0, 0])
            cell[0] += person / known
            cell[1], cell[2] = max(cell[1], occupied), max(cell[2], known)
            cell[3] += peak
        busy = [cell[0] for cell in hours.values() if cell[1] > 0]
        values = {
            "covered_seconds": sum(cell[2] for cell in hours.values()),
            "occupied_seconds": sum(cell[1] for cell in hours.values()),
            "occupied_hours": len(busy),
            "median": statistics.median(busy) if busy else None,
            "peak": max((int(cell[3]) for cell in hours.values()), default=None),
        }
        stmt = self._insert(db.occupancy_months).values(site=site, month=month, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["month", "site"], set_=values))


def _lock_key(site: str) -> int:
    """A site's advisory-lock number (64-bit signed, stable across processes)."""
    digest = hashlib.blake2b(f"hafen-occupancy:{site}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _runs(hours: list[datetime]) -> list[list[datetime]]:
    """Sorted hours split into runs of consecutive hours (one integration each)."""
    runs: list[list[datetime]] = []
    for hour in hours:
        if runs and hour - runs[-1][-1] == HOUR:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return runs


def clear(conn: Connection) -> None:
    """Empty every roll-up (before a rebuild)."""
    for table in (
        db.visits,
        db.site_days,
        db.member_months,
        db.occupancy_hours,
        db.occupancy_months,
        db.occupancy_now,
    ):
        conn.execute(delete(table))


def rebuild(engine: Engine, chunk: int = 20_000) -> tuple[int, int]:
    """Rebuild every roll-up from the stored events and samples (after an upgrade, or to
    check them); returns how many door decisions and devices it read.

    Stop ingest first: an event stored while the rebuild runs could be counted twice.
    """
    rollups = Rollups(engine.dialect.name == "postgresql")
    with engine.begin() as conn:
        clear(conn)
    e, decisions, after = db.events.c, 0, 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(e.id, e.site, e.kind, e.at, e.data)
                .where(e.kind == EventKind.ACCESS_DECISION.value, e.id > after)
                .order_by(e.id)
                .limit(chunk)
            ).all()
            if not rows:
                break
            after = rows[-1].id
            rollups.add_entries(
                conn,
                [
                    {"site": r.site, "kind": r.kind, "at": db.aware(r.at), "data": r.data}
                    for r in rows
                ],
            )
            decisions += len(rows)
    o = db.occupancy_samples.c
    with engine.connect() as conn:
        devices = conn.execute(select(o.site, o.device).distinct()).all()
    for site, device in devices:
        with engine.begin() as conn:
            samples = conn.execute(
                select(o.site, o.device, *(o[c] for c in _NOW_COLUMNS))
                .where(o.site == site, o.device == device)
                .order_by(o.at)
            ).all()
            rollups.add_samples(conn, [r._asdict() | {"at": db.aware(r.at)} for r in samples])
    refresh_months(engine)
    return decisions, len(devices)


def refresh_months(engine: Engine) -> int:
    """Recompute every site's monthly occupancy from the hourly roll-up; how many months."""
    rollups = Rollups(engine.dialect.name == "postgresql")
    h = db.occupancy_hours.c
    with engine.connect() as conn:
        spans = conn.execute(
            select(h.site, func.min(h.hour), func.max(h.hour)).group_by(h.site)
        ).all()
    done = 0
    for site, first, last in spans:
        with engine.begin() as conn:
            zone = rollups.zone(conn, site)
            month = db.aware(first).astimezone(zone).replace(day=1, hour=12)
            while month.strftime("%Y-%m") <= db.aware(last).astimezone(zone).strftime("%Y-%m"):
                rollups.refresh_month(conn, site, month.strftime("%Y-%m"))
                month = (month + timedelta(days=32)).replace(day=1)
                done += 1
    return done


def missing(engine: Engine) -> bool:
    """Whether the store holds events or samples that no roll-up counts: a store upgraded from
    before roll-ups existed (``rebuild`` fills them; until then reports show nothing)."""
    e, s = db.events.c, db.occupancy_samples.c
    with engine.connect() as conn:

        def some(query: Select[Any]) -> bool:
            return conn.scalar(select(query.exists())) or False

        allowed = e.data["allowed"].as_boolean().is_(True)
        entries = some(select(e.id).where(e.kind == EventKind.ACCESS_DECISION.value, allowed))
        samples = some(select(s.at))
        return (entries and not some(select(db.visits.c.site))) or (
            samples and not some(select(db.occupancy_hours.c.site))
        )
