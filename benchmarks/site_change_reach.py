"""A change to a plan's or a company's sites reaching every affected door (hafen issue 16).

500 sites, 5,000 network-wide members (a card each, every one in every site's list), five
companies of 50 staff at 20 sites each, and a plan ``pendel`` held by ``--plan-members`` of
the members (all of them by default: the worst case) at the first 250 sites. Timed from the
service call (the hub's own ``put_company`` / ``change_plan``) until a client subscribed at a
real mosquitto has received every affected site's new signed list:

1. **An employer adds an allowed site** (``put_company``), ``--repeat`` times, a new site each
   time: p50/p95 of call to the site's message received.
2. **A plan goes from 250 to 500 sites** (``change_plan``): the 250 new sites get its holders'
   entries, the 250 old ones its new row; per-site arrival p50/p95 and the total. Then back
   to 250 (the holders leave 250 sites).
3. **The baseline, in the same run**: today's path for the same changes, a full recompile of
   every site they touch (``AclPublisher.publish_sites``, which the services called before),
   after the same store update. Also printed: the first lists of all sites (setup, the same
   path). Ratios are baseline / delta.

Goal: the plan change reaching all 500 sites in at most 10 s.
Run: ``.venv/bin/python benchmarks/site_change_reach.py [--only sqlite] [--plan-members N]
[--repeat R] [--no-baseline]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, Table, insert, select, text, update

from hafen import protocol
from hafen.cards import card_hash
from hafen.signing import BadSignedMessage, open_sealed
from hub import db
from hub.access_compiler import newest_versions
from hub.access_lists import AclPublisher
from hub.mqtt import HubClient
from hub.services.companies import CompanyIn, put_company
from hub.services.plans import PlanIn, change_plan
from sim.broker import LocalBroker
from tests.support.postgres import throwaway_database

SITES, MEMBERS, COMPANIES, STAFF, COMPANY_SITES = 500, 5_000, 5, 50, 20
SITE_IDS = [f"site-{i:03d}" for i in range(SITES)]
HALF = SITE_IDS[: SITES // 2]
KEY = bytes.fromhex("0123456789abcdef" * 2)
WORKDAYS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:00", "end": "20:00"}]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def company_sites(company: int) -> list[str]:
    """Twenty sites spread over the network, different for each company."""
    return [SITE_IDS[(company * 7 + i * 25) % SITES] for i in range(COMPANY_SITES)]


def seed(engine: Engine, plan_members: int) -> None:
    with engine.begin() as conn:
        conn.execute(insert(db.sites), [{"id": s, "timezone": "Europe/Berlin"} for s in SITE_IDS])
        conn.execute(
            insert(db.plans),
            [
                {"id": "netz", "sites": None, "windows": None},
                {"id": "pendel", "sites": HALF, "windows": None},
                {"id": "buero", "sites": None, "windows": WORKDAYS},
            ],
        )
        conn.execute(
            insert(db.companies),
            [
                {"id": f"firma-{c}", "name": f"Firma {c}", "plan_id": "buero", "sites": sites}
                for c in range(COMPANIES)
                for sites in [company_sites(c)]
            ],
        )
        conn.execute(
            insert(db.members),
            [
                {
                    "id": f"m{i:05d}",
                    "blocked": False,
                    "company_id": f"firma-{i // STAFF}" if i < COMPANIES * STAFF else None,
                }
                for i in range(MEMBERS)
            ],
        )
        grants = [{"member_id": f"m{i:05d}", "plan_id": "netz"} for i in range(MEMBERS)]
        grants += [{"member_id": f"m{i:05d}", "plan_id": "pendel"} for i in range(plan_members)]
        conn.execute(insert(db.grants), grants)
        conn.execute(
            insert(db.cards),
            [
                {"hash": card_hash(KEY, i.to_bytes(7, "big")), "member_id": f"m{i:05d}"}
                for i in range(MEMBERS)
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


class Doors:
    """A client subscribed to every site's list: when each signed version arrived."""

    def __init__(self, port: int, publisher: AclPublisher) -> None:
        self._trusted = [publisher.key.public_key()]
        self._seen: dict[tuple[str, int], float] = {}
        self._changed = threading.Condition()
        self.client = HubClient(
            "127.0.0.1",
            port,
            "bench-doors",
            subscriptions=[(protocol.ALL_LISTS, 1)],
            on_message=self._arrived,
        )

    def _arrived(self, message: mqtt.MQTTMessage) -> None:
        at = time.perf_counter()
        try:
            header = open_sealed(bytes(message.payload), self._trusted).header
        except BadSignedMessage:
            return  # retained by an earlier run on the same broker, under its own key
        with self._changed:
            self._seen.setdefault((header["site"], header["version"]), at)
            self._changed.notify_all()

    def arrivals(self, wanted: dict[str, int], timeout: float = 600) -> dict[str, float]:
        """When each site's ``wanted`` version arrived (waits for all of them)."""
        keys = set(wanted.items())
        with self._changed:
            if not self._changed.wait_for(lambda: keys <= self._seen.keys(), timeout):
                raise TimeoutError(f"{len(keys - self._seen.keys())} lists never arrived")
            return {site: self._seen[(site, version)] for site, version in keys}


@dataclass
class Reach:
    """What one change sent: each changed site's seconds from the call to its new list
    arriving at the subscriber, the seconds the call took, and the bytes it published."""

    arrivals: list[float]
    returned: float
    sent_bytes: int

    @property
    def total(self) -> float:
        return max(self.arrivals)


@dataclass
class Bench:
    """One database's run: its store, the hub's publisher, the subscribed doors."""

    label: str
    engine: Engine
    publisher: AclPublisher
    doors: Doors

    def say(self, line: str) -> None:
        print(f"[{self.label}] {line}", flush=True)

    def reach(self, change: Callable[[], object]) -> Reach:
        with self.engine.connect() as conn:
            before = newest_versions(conn)
        started = time.perf_counter()
        change()
        returned = time.perf_counter() - started
        with self.engine.connect() as conn:
            after = newest_versions(conn)
            wanted = {site: v for site, v in after.items() if v != before.get(site)}
            v = db.acl_versions.c
            sent = sum(
                conn.scalar(select(v.message_bytes).where(v.site == site, v.version == version))
                or 0
                for site, version in wanted.items()
            )
        arrived = self.doors.arrivals(wanted)
        return Reach([at - started for at in arrived.values()], returned, sent)

    def store(self, table: Table, key: str, **values: object) -> None:
        """The store part of a change, for the baseline that then recompiles the sites."""
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == key).values(**values))

    def employer_adds_sites(self, repeat: int, baseline: bool) -> None:
        """An employer adds an allowed site, a new one each time."""
        company = CompanyIn(id="firma-0", name="Firma 0", plan="buero", sites=company_sites(0))
        spare = [s for s in SITE_IDS if s not in company.sites]
        ours = []
        for site in spare[:repeat]:
            company = company.model_copy(update={"sites": [*company.sites, site]})
            ours.append(self.reach(partial(put_company, self.engine, self.publisher, company)))
        took = [r.total * 1e3 for r in ours]
        self.say(
            f"employer adds an allowed site ({STAFF} staff; delta to that site): p50 "
            f"{pct(took, 50):.0f} ms  p95 {pct(took, 95):.0f} ms  p99 {pct(took, 99):.0f} ms"
            f"  (n={repeat})"
        )
        if not baseline:
            return
        theirs = []
        for site in spare[repeat : repeat + 3]:
            old = company.sites
            company = company.model_copy(update={"sites": [*old, site]})
            self.store(db.companies, company.id, sites=company.sites)
            theirs.append(self.reach(partial(self.publisher.publish_sites, company.sites)))
        full = [r.total * 1e3 for r in theirs]
        self.say(
            f"  baseline, full recompile of its {len(company.sites)} sites: p50 "
            f"{pct(full, 50):.0f} ms (n=3); baseline/delta p50 {pct(full, 50) / pct(took, 50):.0f}x"
        )

    def plan_grows(self, plan_members: int, baseline: bool) -> None:
        """A plan goes from 250 to all 500 sites, then back; the baseline makes the same
        first change in the store and recompiles every site it touches."""
        grown = None
        for name, sites in (("from 250 to 500 sites", SITE_IDS), ("from 500 to 250", HALF)):
            plan = PlanIn(id="pendel", sites=sites)
            done = self.reach(partial(change_plan, self.engine, self.publisher, plan))
            grown = grown or done
            self.say(
                f"plan held by {plan_members:,} {name} (deltas): {len(done.arrivals)} sites"
                f" reached in {done.total:.2f} s (call returned after {done.returned:.2f} s;"
                f" {done.sent_bytes / 1e6:.0f} MB); per site p50 {pct(done.arrivals, 50):.2f} s"
                f"  p95 {pct(done.arrivals, 95):.2f} s  p99 {pct(done.arrivals, 99):.2f} s"
            )
        if not baseline or grown is None:
            return
        self.store(db.plans, "pendel", sites=SITE_IDS)
        full = self.reach(partial(self.publisher.publish_sites, SITE_IDS))
        self.say(
            f"  baseline, full recompile of the {SITES} sites it touches: "
            f"{len(full.arrivals)} sites reached in {full.total:.1f} s ("
            f"{full.sent_bytes / 1e6:.0f} MB); per site p50 {pct(full.arrivals, 50):.1f} s; "
            f"baseline/delta {full.total / grown.total:.0f}x"
        )


def run(url: str, label: str, plan_members: int, repeat: int, baseline: bool, port: int) -> None:
    engine = db.connect(url)
    seed(engine, plan_members)
    hub = HubClient("127.0.0.1", port, f"bench-hub-{label}")
    hub.start()
    publisher = AclPublisher(engine, Ed25519PrivateKey.generate(), hub.publish, hub.publish_many)
    doors = Doors(port, publisher)
    doors.client.start()
    bench = Bench(label, engine, publisher, doors)
    bench.say(
        f"{SITES} sites, {MEMBERS:,} network-wide members, {COMPANIES} companies of {STAFF} "
        f"staff at {COMPANY_SITES} sites each, plan 'pendel' held by {plan_members:,}"
    )
    first = bench.reach(partial(publisher.publish_sites, SITE_IDS))
    bench.say(f"first lists of all {SITES} sites (setup, full compile): {first.total:.1f} s")
    bench.employer_adds_sites(repeat, baseline)
    bench.plan_grows(plan_members, baseline)
    doors.client.stop()
    hub.stop()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--plan-members", type=int, default=MEMBERS)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hafen-reach-") as name:
        tmp = Path(name)
        with LocalBroker(tmp / "broker") as broker:
            common = (args.plan_members, args.repeat, args.baseline, broker.port)
            if args.only != "postgresql":
                run(f"sqlite:///{tmp / 'hub.db'}", "sqlite", *common)
            if args.only != "sqlite":
                with throwaway_database("hafen_bench") as url:
                    run(url, "postgresql", *common)
    print(f"(machine: {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
