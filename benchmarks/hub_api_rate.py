"""Requests per second of the hub's cached read endpoint, served by ``hafen hub serve``.

A real uvicorn (started as the CLI starts it) is loaded by ``wrk`` over keep-alive connections
on the same 2-core machine. The network overview of 500 sites (1,000 doors) is read by an
admin (the whole network, served from the cache as is) and by a site operator (filtered per
request); ``/health`` (a bare route that asks the store ``SELECT 1``) runs alongside as the
framework's own ceiling. Run: ``.venv/bin/python benchmarks/hub_api_rate.py [--only sqlite]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
import httpx
from dashboard_http import serving
from sqlalchemy import insert

from hub import db
from hub.auth import Role, create_user, issue_token
from tests.support.postgres import throwaway_database

SITES = 500
ROOT = Path(__file__).resolve().parent.parent


def seed(url: str) -> dict[str, str]:
    """500 sites with two doors each and their states; returns a token per role."""
    engine = db.connect(url)
    now = datetime.now(UTC)
    sites = [f"site-{i:03d}" for i in range(SITES)]
    with engine.begin() as conn:
        conn.execute(
            insert(db.sites), [{"id": s, "name": s, "timezone": "Europe/Berlin"} for s in sites]
        )
        doors = [
            {"site": s, "id": f"door-{d}", "kind": "door", "created_at": now}
            for s in sites
            for d in (1, 2)
        ]
        conn.execute(insert(db.devices), doors)
        conn.execute(
            insert(db.device_states),
            [
                {
                    "site": d["site"],
                    "device": d["id"],
                    "online": True,
                    "session": 1,
                    "acl_version": 7,
                    "received_at": now,
                }
                for d in doors
            ],
        )
        conn.execute(
            insert(db.acl_versions),
            [
                {
                    "site": s,
                    "version": 7,
                    "kind": "snapshot",
                    "body": b"",
                    "message_bytes": 0,
                    "published_at": now,
                }
                for s in sites
            ],
        )
    admin = create_user(engine, "nadia", "a long passphrase", Role.NETWORK_ADMIN)
    operator = create_user(engine, "olga", "a long passphrase", Role.SITE_OPERATOR, sites[:3])
    tokens = {
        "admin": issue_token(engine, admin, "bench"),
        "operator": issue_token(engine, operator, "bench"),
    }
    engine.dispose()
    return tokens


def wrk(url: str, token: str | None, seconds: int, connections: int) -> tuple[float, str, str]:
    """Requests/s, p50 and p99 latency as wrk prints them."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors while loading {url}:\n{out}")
    distribution = out.split("Latency Distribution", 1)[1]
    rate = float(_wrk_figure(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _wrk_figure(r"^\s+50%\s+(\S+)", distribution)
    p99 = _wrk_figure(r"^\s+99%\s+(\S+)", distribution)
    return rate, p50, p99


def _wrk_figure(pattern: str, text: str) -> str:
    """One figure from wrk's report; wrk printing something else is an error worth seeing."""
    found = re.search(pattern, text, re.M)
    if found is None:
        raise RuntimeError(f"wrk's report has no {pattern!r}:\n{text}")
    return found.group(1)


def run(url: str, label: str, seconds: int) -> None:
    tokens = seed(url)
    with serving(url) as base:
        overview = httpx.get(
            f"{base}/overview", headers={"Authorization": f"Bearer {tokens['admin']}"}
        )
        assert len(overview.json()) == SITES, overview.text[:200]
        for name, path, token in (
            ("/health (framework ceiling)", "/health", None),
            ("/overview, admin, 500 sites", "/overview", tokens["admin"]),
            ("/overview, operator of 3 sites", "/overview", tokens["operator"]),
        ):
            rate, p50, p99 = wrk(base + path, token, seconds, 16)
            print(f"[{label}] {name:32} {rate:8,.0f} req/s   p50 {p50:>8}  p99 {p99:>8}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: run `make setup` (it installs the Debian package)")
    with tempfile.TemporaryDirectory(prefix="hafen-apibench-") as name:
        if args.only != "postgresql":
            run(f"sqlite:///{Path(name) / 'hub.db'}", "sqlite", args.seconds)
        if args.only != "sqlite":
            with throwaway_database("hafen_bench") as url:
                run(url, "postgresql", args.seconds)
    print(f"(wrk: 1 thread, 16 keep-alive connections; machine: {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
