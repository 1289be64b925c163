"""Each site's newest access-list version, when the hub has published millions of versions.

Every change that affects who may enter adds one version per affected site, forever, so after
a year of a busy network ``acl_versions`` holds millions of rows. The overview, the fleet page
and the live feed (four times a second) need each site's newest version. Timed side by side
on SQLite and PostgreSQL: the hub's ``newest_versions`` (one look into the primary key per
site) and a plain ``GROUP BY site`` over the whole table (the baseline).
Run: ``.venv/bin/python benchmarks/acl_versions.py [--versions-per-site 4000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime

import _path  # noqa: F401  (the project root on sys.path)
from sqlalchemy import func, insert, select

from hub import db
from hub.access_compiler import newest_versions
from tests.support.postgres import throwaway_database

SITES = [f"site-{i:03d}" for i in range(500)]


def seed(engine, per_site: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(db.sites), [{"id": s, "timezone": "Europe/Berlin"} for s in SITES])
        for site in SITES:
            conn.execute(
                insert(db.acl_versions),
                [
                    {
                        "site": site,
                        "version": v,
                        "kind": "delta",
                        "body": b"",
                        "message_bytes": 0,
                        "published_at": now,
                    }
                    for v in range(1, per_site + 1)
                ],
            )


def timed(engine, query, rounds: int = 20) -> tuple[float, float]:
    took = []
    for _ in range(rounds):
        with engine.connect() as conn:
            started = time.perf_counter()
            query(conn)
            took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return took[len(took) // 2], took[int(len(took) * 0.95) - 1]


def grouped(conn) -> dict[str, int]:
    v = db.acl_versions.c
    return dict(conn.execute(select(v.site, func.max(v.version)).group_by(v.site)).all())


def bench(name: str, url: str, per_site: int) -> None:
    engine = db.connect(url)
    started = time.monotonic()
    seed(engine, per_site)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE acl_versions")
    loaded = time.monotonic() - started
    print(f"[{name}] {len(SITES) * per_site:,} versions loaded in {loaded:.0f} s")
    with engine.connect() as conn:
        assert newest_versions(conn) == grouped(conn)
    ours, baseline = timed(engine, newest_versions), timed(engine, grouped)
    for label, (p50, p95) in (
        ("newest_versions (per-site lookup)", ours),
        ("GROUP BY site (baseline)", baseline),
    ):
        print(f"  {label:35s}p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    print(f"  baseline / ours, p50               {baseline[0] / ours[0]:7.1f} x")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions-per-site", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/hub.db", args.versions_per_site)
    with throwaway_database("hafen_bench") as url:
        bench("postgresql", url, args.versions_per_site)


if __name__ == "__main__":
    main()
