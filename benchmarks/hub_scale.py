"""Hub benchmark at network scale: 500 sites, 50,000 members, 80,000 cards, 3 million events.

Prints, for SQLite and PostgreSQL: member and door-event search p95 through the API, and how
long a plan change and a member change that touch all 500 sites take to compile and publish
every delta (to a real mosquitto).
Run: ``.venv/bin/python benchmarks/hub_scale.py [--events N] [--only sqlite]``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from hafen.cards import card_hash
from hub import db
from hub.access_lists import AclPublisher
from hub.app import create_app
from hub.auth import Role, create_user, issue_token
from hub.mqtt import HubClient
from sim.broker import LocalBroker
from tests.support.postgres import throwaway_database

SITES, MEMBERS, CARDS = 500, 50_000, 80_000
KEY = bytes.fromhex("0123456789abcdef" * 2)
NAMES = ["Anna", "Ben", "Carla", "Dirk", "Eva", "Frank", "Greta", "Hans", "Ida", "Jonas"]
FAMILIES = ["Schmidt", "Meier", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Koch"]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed(engine, events: int) -> None:
    """Sites in 50 districts of 10; members on their district's plan, one in ten also on the
    network-wide plan; 80,000 cards; ``events`` door events over 30 days."""
    rng = random.Random(7)
    sites = [f"site-{i:03d}" for i in range(SITES)]
    with engine.begin() as conn:
        conn.execute(
            insert(db.sites), [{"id": s, "timezone": "Europe/Berlin", "name": s} for s in sites]
        )
        plans = [
            {"id": f"district-{d:02d}", "sites": sites[d * 10 : (d + 1) * 10], "windows": None}
            for d in range(SITES // 10)
        ]
        plans.append({"id": "flex", "sites": None, "windows": None})
        conn.execute(insert(db.plans), plans)
        members = [
            {
                "id": f"m{i:05d}",
                "blocked": False,
                "name": f"{rng.choice(NAMES)} {rng.choice(FAMILIES)} {i}",
                "email": f"m{i:05d}@example.org",
            }
            for i in range(MEMBERS)
        ]
        conn.execute(insert(db.members), members)
        grants = [
            {
                "member_id": f"m{i:05d}",
                "plan_id": f"district-{i % (SITES // 10):02d}",
                "source": "plan",
            }
            for i in range(MEMBERS)
        ]
        grants += [
            {"member_id": f"m{i:05d}", "plan_id": "flex", "source": "plan"}
            for i in range(0, MEMBERS, 10)
        ]
        conn.execute(insert(db.grants), grants)
        conn.execute(
            insert(db.cards),
            [
                {
                    "hash": card_hash(KEY, i.to_bytes(7, "big")),
                    "member_id": f"m{i % MEMBERS:05d}",
                    "revoked": False,
                }
                for i in range(CARDS)
            ],
        )
    write_events(engine, events, sites, rng)
    # Fresh statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE would leave them after
    # a bulk load: without them PostgreSQL plans every search as if the tables were empty.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def write_events(engine, count: int, sites: list[str], rng: random.Random) -> None:
    start = datetime.now(UTC) - timedelta(days=30)
    batch = []
    postgres = engine.dialect.name == "postgresql"
    columns = "event_id, site, device, epoch, seq, kind, at, data, received_at, member"
    marks = ", ".join(["%s" if postgres else "?"] * 10)
    sql = f"INSERT INTO events ({columns}) VALUES ({marks})"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for i in range(count):
            member = f"m{rng.randrange(MEMBERS):05d}"
            at = start + timedelta(seconds=i * 30 * 86400 / count)
            stamp = at if postgres else at.strftime("%Y-%m-%d %H:%M:%S.%f")
            data = f'{{"card":"{uuid.uuid4().hex}","allowed":true,"member":"{member}"}}'
            batch.append(
                (
                    uuid.uuid4().hex,
                    sites[i % SITES],
                    "door-1",
                    "00000000000000aa",
                    i // SITES + 1,
                    "door.decision",
                    stamp,
                    data,
                    stamp,
                    member,
                )
            )
            if len(batch) == 50_000:
                cursor.executemany(sql, batch)
                raw.commit()
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
            raw.commit()
    finally:
        raw.close()


def timed(client: TestClient, path: str, params: dict, headers: dict) -> float:
    t0 = time.perf_counter()
    response = client.get(path, params=params, headers=headers)
    elapsed = (time.perf_counter() - t0) * 1e3
    assert response.status_code == 200, response.text
    return elapsed


def run(url: str, label: str, events: int, broker: LocalBroker) -> None:
    engine = db.connect(url)
    t0 = time.perf_counter()
    seed(engine, events)
    print(
        f"[{label}] seeded {SITES} sites, {MEMBERS:,} members, {CARDS:,} cards, "
        f"{events:,} events in {time.perf_counter() - t0:.0f} s"
    )
    admin = create_user(engine, "nadia", "a long passphrase", Role.NETWORK_ADMIN)
    headers = {"Authorization": f"Bearer {issue_token(engine, admin, 'bench')}"}
    client_mqtt = HubClient("127.0.0.1", broker.port, f"bench-hub-{label}")
    client_mqtt.start()
    publisher = AclPublisher(
        engine, Ed25519PrivateKey.generate(), client_mqtt.publish, client_mqtt.publish_many
    )
    rng = random.Random(1)
    with TestClient(create_app(engine, KEY, publisher)) as api:
        member_ms = [
            timed(api, "/members", {"q": rng.choice(FAMILIES + NAMES).lower()[:4]}, headers)
            for _ in range(200)
        ]
        site_ms = [
            timed(
                api, "/events", {"site": f"site-{rng.randrange(SITES):03d}", "limit": 50}, headers
            )
            for _ in range(200)
        ]
        member_events_ms = [
            timed(api, "/events", {"member": f"m{rng.randrange(MEMBERS):05d}"}, headers)
            for _ in range(200)
        ]
        print(
            f"[{label}] member search p50 {pct(member_ms, 50):.1f} ms  p95 "
            f"{pct(member_ms, 95):.1f} ms; event search by site p95 {pct(site_ms, 95):.1f} ms,"
            f" by member p95 {pct(member_events_ms, 95):.1f} ms (n=200 each)"
        )
        t0 = time.perf_counter()
        publisher.publish_sites({f"site-{i:03d}" for i in range(SITES)})
        print(
            f"[{label}] first lists of all {SITES} sites compiled and published in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:00", "end": "22:00"}
        t0 = time.perf_counter()
        response = api.put("/plans/flex", json={"id": "flex", "windows": [window]}, headers=headers)
        plan_s = time.perf_counter() - t0
        assert response.status_code == 200, response.text
        print(
            f"[{label}] plan change touching all {SITES} sites: every delta compiled, "
            f"signed and acknowledged by the broker in {plan_s:.2f} s"
        )
        member_s = []
        for i in range(10):  # m00000 is on the network-wide plan: listed at every site
            t0 = time.perf_counter()
            action = "block" if i % 2 == 0 else "unblock"
            response = api.post(f"/members/m00000/{action}", headers=headers)
            member_s.append(time.perf_counter() - t0)
            assert response.status_code == 204, response.text
        print(
            f"[{label}] member change reaching all {SITES} sites (block/unblock, per-member "
            f"deltas): p50 {pct(member_s, 50):.2f} s, worst {max(member_s):.2f} s (n=10)"
        )
    client_mqtt.stop()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hafen-hubbench-") as name:
        tmp = Path(name)
        with LocalBroker(tmp / "broker") as broker:
            if args.only != "postgresql":
                run(f"sqlite:///{tmp / 'hub.db'}", "sqlite", args.events, broker)
            if args.only != "sqlite":
                with throwaway_database("hafen_bench") as url:
                    run(url, "postgresql", args.events, broker)
    print(f"(machine: {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
