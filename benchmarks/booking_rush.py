"""No overbooking under load: 200 members book the last 10 desks of one site-day at once over
HTTP, against a running ``hafen hub serve``, on SQLite and PostgreSQL.

The site has 40 desks, 30 of them booked already; 200 members (each with their own token and
the network-wide plan) ask for a desk there for tomorrow through ``POST /me/bookings``, all
released at once onto 32 keep-alive connections. Printed: the bookings made (must be exactly
10, and the store must hold exactly 40), every refusal by status and message, the latency of
the booking requests (p50/p95/p99), and beside it the same for 200 ``GET /health`` at the same
concurrency (a bare route that asks the store ``SELECT 1``: the framework's own floor).
Run: ``.venv/bin/python benchmarks/booking_rush.py [--only sqlite]``. Prints, asserts only
that nothing was overbooked.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import _path  # noqa: F401  (the project root on sys.path)
import httpx
from argon2 import PasswordHasher
from dashboard_http import serving
from sqlalchemy import Engine, func, insert, select

from hub import db
from hub.auth import Role, issue_token
from hub.services.desk_pool import holding
from tests.support.postgres import throwaway_database

SITE = "borna"
DESKS, TAKEN, CLIENTS, CONNECTIONS = 40, 30, 200, 32
ZONE = ZoneInfo("Europe/Berlin")


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed(engine: Engine, members: int, sites: list[str], desks: int) -> list[str]:
    """``sites`` (always open, ``desks`` each), ``members`` on the network-wide plan, each
    with a member user; returns their tokens in member order (m0000, m0001, ...)."""
    names = [f"m{i:04d}" for i in range(members)]
    password = PasswordHasher().hash("a long passphrase")  # one hash: seeding, not signing in
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(db.sites),
            [{"id": s, "name": s, "timezone": "Europe/Berlin", "desks": desks} for s in sites],
        )
        conn.execute(insert(db.plans).values(id="flex"))
        conn.execute(insert(db.members), [{"id": m, "blocked": False} for m in names])
        conn.execute(insert(db.grants), [{"member_id": m, "plan_id": "flex"} for m in names])
        conn.execute(
            insert(db.users),
            [
                {
                    "username": m,
                    "password_hash": password,
                    "role": Role.MEMBER.value,
                    "disabled": False,
                    "created_at": now,
                    "member_id": m,
                }
                for m in names
            ],
        )
        users = {m: u for m, u in conn.execute(select(db.users.c.member_id, db.users.c.id))}
    return [issue_token(engine, users[m], "bench") for m in names]


def take_desks(engine: Engine, site: str, day, count: int) -> None:
    """``count`` desks of ``site`` on ``day`` booked already (by day guests of nobody)."""
    now = datetime.now(UTC)
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZONE).astimezone(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(db.bookings),
            [
                {
                    "member_id": f"earlier-{i}",
                    "site_id": site,
                    "kind": "desk",
                    "starts_at": start,
                    "ends_at": start + timedelta(days=1),
                    "created_at": now,
                    "day": day,
                    "part": "day",
                }
                for i in range(count)
            ],
        )


def at_once(
    calls: list[Callable[[], tuple[int, str]]],
) -> tuple[list[tuple[int, str]], list[float]]:
    """Run ``calls`` on ``CONNECTIONS`` threads, all queued at once; each one's answer and
    its latency in milliseconds (from when its thread sent it)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def timed(call: Callable[[], tuple[int, str]]) -> tuple[int, str]:
        started = time.perf_counter()
        answer = call()
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)
        return answer

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        answers = list(pool.map(timed, calls))
    return answers, latencies


def line(label: str, name: str, ms: list[float], floor: float | None = None) -> None:
    ratio = f"  ({pct(ms, 95) / floor:4.1f}x the floor's p95)" if floor else ""
    print(
        f"[{label}] {name:30} p50 {pct(ms, 50):7.1f} ms  p95 {pct(ms, 95):7.1f} ms"
        f"  p99 {pct(ms, 99):7.1f} ms{ratio}"
    )


def run(url: str, label: str) -> None:
    engine = db.connect(url)
    tokens = seed(engine, CLIENTS, [SITE], DESKS)
    tomorrow = datetime.now(ZONE).date() + timedelta(days=1)
    take_desks(engine, SITE, tomorrow, TAKEN)
    body = {"site": SITE, "kind": "desk", "day": tomorrow.isoformat(), "part": "day"}
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    with serving(url) as base, httpx.Client(base_url=base, limits=limits, timeout=60) as client:
        for _ in range(CONNECTIONS):  # warm up: imports, first queries, open connections
            client.get("/health")

        def health() -> tuple[int, str]:
            return client.get("/health").status_code, ""

        def book(token: str) -> Callable[[], tuple[int, str]]:
            def call() -> tuple[int, str]:
                headers = {"Authorization": f"Bearer {token}"}
                answer = client.post("/me/bookings", json=body, headers=headers)
                return answer.status_code, answer.json().get("detail", "")

            return call

        _, floor = at_once([health] * CLIENTS)
        answers, latencies = at_once([book(t) for t in tokens])
    with engine.connect() as conn:
        b = db.bookings.c
        held = conn.scalar(
            select(func.count()).where(b.site_id == SITE, b.day == tomorrow, holding())
        )
    engine.dispose()
    made = sum(1 for status, _ in answers if status == 201)
    print(
        f"[{label}] {CLIENTS} members for the last {DESKS - TAKEN} of {DESKS} desks:"
        f" {made} booked; the store holds {held} of {DESKS}"
    )
    for (status, detail), count in Counter(a for a in answers if a[0] != 201).most_common():
        print(f"[{label}]   {count:4} x {status} {detail}")
    line(label, f"GET /health x{CLIENTS} (floor)", floor)
    line(label, f"POST /me/bookings x{CLIENTS}", latencies, pct(floor, 95))
    assert made == DESKS - TAKEN and held == DESKS, "overbooked or underbooked"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hafen-rush-") as name:
        if args.only != "postgresql":
            run(f"sqlite:///{Path(name) / 'hub.db'}", "sqlite")
        if args.only != "sqlite":
            with throwaway_database("hafen_bench") as url:
                run(url, "postgresql")
    print(
        f"({CONNECTIONS} concurrent keep-alive connections, one hub process;"
        f" machine: {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
