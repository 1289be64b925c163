"""The dashboard and the funders' report at network scale, on SQLite and PostgreSQL.

500 sites (two doors each), 50,000 members (one in five with a company), 3 million door
events over the last 30 days (each member mostly at their home site, one in ten also at others
of their district), today's occupancy samples minute by minute, and 30 days of hourly
occupancy roll-ups. The events are bulk-loaded and the roll-ups rebuilt from them by the same
code ingest runs (timed). Then, against ``hafen hub serve`` (a real uvicorn, as the CLI starts
it), sequential keep-alive requests time the overview and site pages, the charts and the
monthly report, beside ``/health`` as the framework's own floor. Last, a real edge agent
(mock pins, nfcpy's UDP reader) taps cards while headless chromium holds the overview open:
the time from tap to the page changing, beside the time from tap to the event reaching the
broker. Run: ``.venv/bin/python benchmarks/dashboard.py [--only sqlite] [--events N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
from sqlalchemy import text

from hub import db, reports, rollups
from tests.support.postgres import throwaway_database

SITES, MEMBERS, DAYS = 500, 50_000, 30
NAMES = ["Anna", "Ben", "Cem", "Dana", "Emil", "Fatma", "Gero", "Hanna", "Ilse", "Jonas"]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(label: str, samples: list[float], unit: str = "ms") -> None:
    print(
        f"  {label:44} p50 {pct(samples, 50):8.1f} {unit}   p95 {pct(samples, 95):8.1f} {unit}"
        f"   (n={len(samples)})"
    )


def seed(engine, events: int) -> None:
    """The directory, the fleet's state, and ``events`` door decisions over ``DAYS`` days."""
    from seed_dashboard import seed_directory, seed_events, seed_occupancy

    sites = [f"site-{i:03d}" for i in range(SITES)]
    seed_directory(engine, sites, MEMBERS, NAMES)
    started = time.perf_counter()
    seed_events(engine, sites, MEMBERS, events, DAYS)
    print(f"  bulk-loaded {events:,} door events in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    decisions, _ = rollups.rebuild(engine)
    took = time.perf_counter() - started
    print(
        f"  visit roll-ups rebuilt from {decisions:,} events in {took:.0f} s"
        f" ({decisions / took:,.0f} events/s)"
    )
    seed_occupancy(engine, sites, DAYS)
    started = time.perf_counter()
    months = rollups.refresh_months(engine)
    took = time.perf_counter() - started
    print(f"  monthly occupancy of {months} site-months from the hourly roll-up in {took:.1f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def bench_report(engine) -> None:
    now = datetime.now(UTC)
    this_month = now.strftime("%Y-%m")
    last_month = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    for month in (last_month, this_month):
        took = []
        for _ in range(7):
            started = time.perf_counter()
            rows = reports.monthly_report(engine, month)
            took.append((time.perf_counter() - started) * 1000)
        visits = sum(r.visits for r in rows)
        line(f"monthly report {month}, {len(rows)} sites ({visits:,} visits)", took)


def run(url: str, label: str, events: int, taps: int) -> None:
    from dashboard_http import bench_http
    from dashboard_live import bench_live

    print(f"[{label}]")
    engine = db.connect(url)
    seed(engine, events)
    bench_report(engine)
    bench_http(url, line)
    bench_live(url, engine, taps, line)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--taps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hafen-dashbench-") as name:
        if args.only != "postgresql":
            run(f"sqlite:///{Path(name) / 'hub.db'}", "sqlite", args.events, args.taps)
        if args.only != "sqlite":
            with throwaway_database("hafen_bench") as url:
                run(url, "postgresql", args.events, args.taps)
    print(f"(machine: {os.cpu_count()} cores; sequential requests over one keep-alive client)")


if __name__ == "__main__":
    random.seed(7)
    main()
