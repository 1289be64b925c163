"""Sustained booking rate with the door deltas, and booking made → the door lets the card in.

One ``hafen hub serve`` process with its signing key and a real mosquitto (it publishes each
booking's delta to the site's doors, as in production). 2,000 members, each with a token, a
card and the network-wide plan, book a desk for today at one of 50 sites (40 each) through
``POST /me/bookings`` on 32 keep-alive connections. Five of the sites have a door: its real
access-list consumer (paho, the edge's ``AclUpdater`` and store) and its real decision
engine; for each booking at those sites the time from sending the request to the moment that
door's own decision lets the member's card in is measured (the door decides from the list it
holds: that is the card getting in, also offline from then on).

Printed: bookings/s and the requests' p50/p95/p99 beside 2,000 ``GET /health`` at the same
concurrency (the framework's floor), and the door latency p50/p95/p99/max, on SQLite and
PostgreSQL. Goals (issue 16): ≥ 100 bookings/s; door p95 ≤ 2 s on loopback.
Run: ``.venv/bin/python benchmarks/booking_rate.py [--only sqlite]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

import _path  # noqa: F401  (the project root on sys.path)
import httpx
import paho.mqtt.client as mqtt
from booking_rush import CONNECTIONS, at_once, pct, seed
from dashboard_http import hub_serving
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, insert

from edge.agent.access_list import applied_version
from edge.agent.decision import AccessPolicy
from edge.agent.remote import AclUpdater
from edge.agent.store import EdgeStore
from hafen import protocol
from hafen.cards import card_hash
from hub import db
from hub.access_lists import AclPublisher
from hub.keys import generate_key, load_key
from hub.mqtt import HubClient
from sim.broker import LocalBroker
from tests.support.postgres import throwaway_database

MEMBERS, SITES, DOORS = 2000, 50, 5
ZONE = ZoneInfo("Europe/Berlin")
KEY = bytes.fromhex("0123456789abcdef" * 2)


def card_of(index: int) -> str:
    return card_hash(KEY, bytes([4]) + index.to_bytes(6, "big"))


class Door:
    """One site's door as far as access goes: its list consumer and its decision engine.
    ``watch`` a member's card before booking for them; ``let_in`` says when the door's own
    decision first let that card in."""

    def __init__(self, tmp: Path, site: str, port: int, trusted: list) -> None:
        self.site = site
        self.store = EdgeStore(tmp / f"{site}.db", synchronous="full")
        self.policy = AccessPolicy(site, ZONE)
        self.updater = AclUpdater(self.store, site, ZONE, KEY, trusted, on_change=self._applied)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-door-{site}", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_: c.subscribe(protocol.acl_topic(site), qos=1)
        self.client.on_message = lambda _c, _u, m: self.updater.submit(bytes(m.payload))
        self.port = port
        self.watched: dict[str, float] = {}  # card -> when its booking was sent
        self.let_in: dict[str, float] = {}  # card -> seconds from sending to let in
        self._lock = threading.Lock()

    def start(self) -> None:
        self.updater.start()
        self.client.connect_async("127.0.0.1", self.port)
        self.client.loop_start()

    def watch(self, card: str) -> None:
        with self._lock:
            self.watched[card] = time.monotonic()

    def _applied(self) -> None:
        """A list was applied: ask the door's decision for every card still waiting."""
        now = datetime.now(UTC)
        with self._lock:
            waiting = dict(self.watched)
        with self.store.read() as conn:
            allowed = [c for c in waiting if self.policy.decide(conn, c, now).allowed]
        at = time.monotonic()
        with self._lock:
            for card in allowed:
                self.let_in[card] = at - self.watched.pop(card)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.updater.stop()
        self.store.close()


def spread(ms: list[float]) -> str:
    return f"p50 {pct(ms, 50):6.1f} ms  p95 {pct(ms, 95):6.1f} ms  p99 {pct(ms, 99):6.1f} ms"


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_lists(engine: Engine, port: int, key_file: Path, sites: list[str]) -> None:
    """Every site's first list, sent as the hub sends it, before the hub serves: the
    bookings then go out as deltas."""
    client = HubClient("127.0.0.1", port, client_id="bench-first-lists")
    client.start()
    publisher = AclPublisher(engine, load_key(key_file), client.publish, client.publish_many)
    publisher.publish_sites(sites)
    publisher.close()
    client.stop()


def run(url: str, label: str, tmp: Path) -> None:
    tmp.mkdir()
    with LocalBroker(tmp / "broker") as broker:
        measure(url, label, tmp, broker)


def measure(url: str, label: str, tmp: Path, broker: LocalBroker) -> None:
    engine = db.connect(url)
    sites = [f"site-{i:02d}" for i in range(SITES)]
    tokens = seed(engine, MEMBERS, sites, desks=MEMBERS // SITES)
    with engine.begin() as conn:
        conn.execute(
            insert(db.cards),
            [
                {"hash": card_of(i), "member_id": f"m{i:04d}", "revoked": False}
                for i in range(MEMBERS)
            ],
        )
    key_file = tmp / f"{label}-signing.pem"
    trusted = [generate_key(key_file).public_key()]
    first_lists(engine, broker.port, key_file, sites)
    doors = {s: Door(tmp, s, broker.port, trusted) for s in sites[:DOORS]}
    for door in doors.values():
        door.start()
    deadline = time.monotonic() + 30
    while any(applied_version(d.store) < 1 for d in doors.values()):
        if time.monotonic() > deadline:
            raise RuntimeError("a door never got its first list")
        time.sleep(0.05)
    today = datetime.now(ZONE).date().isoformat()
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    options = ("--key", str(key_file), "--broker", f"127.0.0.1:{broker.port}")
    with (
        hub_serving(url, *options) as (base, server),
        httpx.Client(base_url=base, limits=limits, timeout=60) as client,
    ):
        for _ in range(CONNECTIONS):
            client.get("/health")

        def health() -> tuple[int, str]:
            return client.get("/health").status_code, ""

        def book(index: int) -> Callable[[], tuple[int, str]]:
            site = sites[index % SITES]
            body = {"site": site, "kind": "desk", "day": today, "part": "day"}
            headers = {"Authorization": f"Bearer {tokens[index]}"}

            def call() -> tuple[int, str]:
                if site in doors:
                    doors[site].watch(card_of(index))
                answer = client.post("/me/bookings", json=body, headers=headers)
                return answer.status_code, answer.text[:200]

            return call

        started = time.perf_counter()
        _, floor = at_once([health] * MEMBERS)
        floor_rate = MEMBERS / (time.perf_counter() - started)
        started, cpu = time.perf_counter(), cpu_seconds(server.pid)
        answers, latencies = at_once([book(i) for i in range(MEMBERS)])
        took = time.perf_counter() - started
        rate, hub_cpu = MEMBERS / took, cpu_seconds(server.pid) - cpu
        deadline = time.monotonic() + 30
        while any(d.watched for d in doors.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    for door in doors.values():
        door.stop()
    engine.dispose()
    failed = [a for a in answers if a[0] != 201]
    door_s = [s for d in doors.values() for s in d.let_in.values()]
    never = sum(len(d.watched) for d in doors.values())
    print(f"[{label}] {MEMBERS - len(failed)} of {MEMBERS} booked at {SITES} sites", end="")
    print(f"; refused: {failed[:3]}" if failed else "")
    print(f"[{label}] GET /health (floor)      {floor_rate:7.0f} req/s       {spread(floor)}")
    print(
        f"[{label}] POST /me/bookings        {rate:7.0f} bookings/s  {spread(latencies)}"
        f"  ({floor_rate / rate:.1f}x slower than the floor)"
    )
    print(
        f"[{label}]   the hub process used {hub_cpu / MEMBERS * 1000:.1f} ms of CPU per booking"
        f" ({hub_cpu / took:.0%} of one core; the machine's load average:"
        f" {os.getloadavg()[0]:.1f})"
    )
    print(
        f"[{label}] booking sent -> door lets the card in ({len(door_s)} bookings at"
        f" {DOORS} doors, under that load): p50 {pct(door_s, 50):.3f} s  p95"
        f" {pct(door_s, 95):.3f} s  p99 {pct(door_s, 99):.3f} s  max {max(door_s):.3f} s"
        + (f"; {never} never let in" if never else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hafen-rate-") as name:
        tmp = Path(name)
        if args.only != "postgresql":
            run(f"sqlite:///{tmp / 'hub.db'}", "sqlite", tmp / "sqlite")
        if args.only != "sqlite":
            with throwaway_database("hafen_bench") as url:
                run(url, "postgresql", tmp / "postgresql")
    print(
        f"({CONNECTIONS} concurrent keep-alive connections, one hub process publishing to a"
        f" local mosquitto; machine: {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
