"""Network benchmark on loopback with a real mosquitto: revocation, list sizes, ingest, backlog.

Run: ``.venv/bin/python benchmarks/network.py`` (``make bench``). Prints figures, asserts nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

import paho.mqtt.client as mqtt
from _hub import register  # benchmarks/, beside this script
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, insert, select

from edge.agent.access_list import applied_version
from edge.agent.remote import AclUpdater
from edge.agent.store import EdgeStore
from hafen import protocol
from hafen.cards import card_hash
from hub import db
from hub.access_lists import AclPublisher
from hub.ingest.worker import IngestWorker
from hub.mqtt import HubClient
from hub.services.cards import revoke_card
from sim.broker import LocalBroker

KEY = bytes.fromhex("0123456789abcdef" * 2)


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed_members(engine, count: int, sites: list[str]) -> list[str]:
    """``count`` members on the network-wide plan, one card each; returns the card hashes."""
    hashes = [card_hash(KEY, bytes([4]) + i.to_bytes(6, "big")) for i in range(count)]
    with engine.begin() as conn:
        conn.execute(insert(db.sites), [{"id": s, "timezone": "Europe/Berlin"} for s in sites])
        conn.execute(insert(db.plans), [{"id": "flex", "sites": None, "windows": None}])
        conn.execute(insert(db.members), [{"id": f"m{i}", "blocked": False} for i in range(count)])
        conn.execute(
            insert(db.grants),
            [
                {
                    "member_id": f"m{i}",
                    "plan_id": "flex",
                    "valid_from": datetime(2026, 1, 1, tzinfo=UTC),
                }
                for i in range(count)
            ],
        )
        conn.execute(
            insert(db.cards),
            [{"hash": h, "member_id": f"m{i}", "revoked": False} for i, h in enumerate(hashes)],
        )
    return hashes


def bench_list_sizes(tmp: Path, broker: LocalBroker) -> None:
    engine = db.connect(f"sqlite:///{tmp / 'sizes.db'}")
    hashes = seed_members(engine, 100_000, ["big-site"])
    client = HubClient("127.0.0.1", broker.port, "bench-sizes")
    client.start()
    publisher = AclPublisher(engine, Ed25519PrivateKey.generate(), client.publish)
    t0 = time.perf_counter()
    snapshot = publisher.publish_site("big-site")
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    [delta] = revoke_card(engine, publisher, hashes[4242]).published
    revoke_s = time.perf_counter() - t0
    client.stop()
    assert snapshot is not None
    print("Access-list sizes (100,000 cards at one site, signed, zlib JSON)")
    print(
        f"  full snapshot {snapshot.size / 1e6:.2f} MB (compile, sign, publish {compile_s:.1f} s)"
    )
    print(f"  revoke one card: {delta.kind} of {delta.size} bytes ({revoke_s * 1e3:.0f} ms)")


class SimulatedSite:
    """A site's access-list side: its own paho session, the real updater and store."""

    def __init__(self, tmp: Path, site: str, port: int, trusted: list, applied: dict) -> None:
        self.store = EdgeStore(tmp / f"{site}.db", synchronous="full")
        self.updater = AclUpdater(
            self.store,
            site,
            ZoneInfo("Europe/Berlin"),
            KEY,
            trusted,
            on_change=lambda: applied.setdefault(
                (site, applied_version(self.store)), time.monotonic()
            ),
        )
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{site}", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_: c.subscribe(protocol.acl_topic(site), qos=1)
        self.client.on_message = lambda _c, _u, m: self.updater.submit(bytes(m.payload))
        self.port = port

    def start(self) -> None:
        self.updater.start()
        self.client.connect_async("127.0.0.1", self.port)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.updater.stop()
        self.store.close()


def run_sites(names: list[str], port: int, public_key: str, tmp: Path) -> None:
    """A process holding some of the simulated sites; prints each apply as it happens."""
    from hafen.signing import public_key_from_text

    applied: dict = {}
    printed: set = set()
    trusted = [public_key_from_text(public_key)]
    fleet = [SimulatedSite(tmp, n, port, trusted, applied) for n in names]
    for site in fleet:
        site.start()
    while True:
        for key, at in list(applied.items()):
            if key not in printed:
                printed.add(key)
                print(f"{key[0]} {key[1]} {at}", flush=True)
        time.sleep(0.005)


def bench_revocation(tmp: Path, broker: LocalBroker, sites: int = 200, procs: int = 4) -> None:
    """Sites run in several processes: one process cannot select() on 200 paho sockets."""
    from hafen.signing import public_key_text

    names = [f"site-{i:03d}" for i in range(sites)]
    engine = db.connect(f"sqlite:///{tmp / 'revoke.db'}")
    hashes = seed_members(engine, 200, names)
    key = Ed25519PrivateKey.generate()
    client = HubClient("127.0.0.1", broker.port, "bench-revoke")
    client.start()
    publisher = AclPublisher(engine, key, client.publish)
    for name in names:
        publisher.publish_site(name)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--sites",
                ",".join(names[i::procs]),
                str(broker.port),
                public_key_text(key),
                str(tmp),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(procs)
    ]
    applied: dict[tuple[str, int], float] = {}

    def collect(proc: subprocess.Popen) -> None:
        for row in proc.stdout:  # type: ignore[union-attr]
            site, version, at = row.split()
            applied[(site, int(version))] = float(at)

    for proc in workers:
        threading.Thread(target=collect, args=(proc,), daemon=True).start()
    deadline = time.monotonic() + 120
    while sum(1 for (_, v) in applied if v == 1) < sites and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = sum(1 for (_, v) in applied if v == 1)
    t0 = time.monotonic()
    published = revoke_card(engine, publisher, hashes[7]).published
    hub_s = time.monotonic() - t0
    while sum(1 for (_, v) in applied if v == 2) < ready and time.monotonic() < t0 + 60:
        time.sleep(0.01)
    latencies = [at - t0 for (_, v), at in applied.items() if v == 2]
    for proc in workers:
        proc.terminate()
    client.stop()
    print(f"Revocation propagation (hub revoke -> {sites} simulated sites applied the delta)")
    print(
        f"  {len(latencies)} of {sites} sites (ready {ready}); hub published {len(published)}"
        f" deltas in {hub_s * 1e3:.0f} ms; p50 {pct(latencies, 50):.3f} s"
        f"  p99 {pct(latencies, 99):.3f} s  max {max(latencies):.3f} s"
    )


def event_lines(site: str, device: str, count: int) -> bytes:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    epoch = os.urandom(8).hex()
    body = '{"card":"' + "ab" * 16 + '","allowed":true,"member":"m1","plan":"flex"}'
    return "".join(
        f'{{"schema":1,"event_id":"{os.urandom(16).hex()}","epoch":"{epoch}","seq":{seq},'
        f'"at":"{now}","data":{body}}}\n'
        for seq in range(1, count + 1)
    ).encode()


def bench_ingest(
    tmp: Path, broker: LocalBroker, devices: int = 10, per_device: int = 10_000
) -> None:
    """One live stream, two consumers at once: mosquitto_sub (raw) and one ingest worker.

    Ten mosquitto_pub processes play ten devices publishing as fast as the broker takes it.
    """
    total = devices * per_device
    port = str(broker.port)
    engine = db.connect(f"sqlite:///{tmp / 'ingest.db'}")
    register(engine, {"bench": [f"d{i}" for i in range(devices)]}, ["m1"])
    worker = IngestWorker(
        engine, "127.0.0.1", broker.port, Ed25519PrivateKey.generate(), card_key=KEY
    )
    worker.start()
    raw = subprocess.Popen(
        [
            "mosquitto_sub",
            "-p",
            port,
            "-q",
            "1",
            "-t",
            protocol.ALL_EVENTS,
            "-C",
            str(total),
            "-F",
            "%U",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # both subscribed
    streams = [event_lines("bench", f"d{i}", per_device) for i in range(devices)]
    progress: list[tuple[float, int]] = []
    pubs = [
        subprocess.Popen(
            [
                "mosquitto_pub",
                "-p",
                port,
                "-q",
                "1",
                "-l",
                "-t",
                protocol.event_topic("bench", f"d{i}", "door.decision"),
            ],
            stdin=subprocess.PIPE,
        )
        for i in range(devices)
    ]
    for pub, stream in zip(pubs, streams, strict=True):
        pub.stdin.write(stream)  # type: ignore[union-attr]
        pub.stdin.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 300
    while worker.stored < total and time.monotonic() < deadline:
        progress.append((time.monotonic(), worker.stored))
        time.sleep(0.005)
    progress.append((time.monotonic(), worker.stored))
    out, _ = raw.communicate(timeout=300)
    for pub in pubs:
        pub.wait(60)
    worker.stop()
    stamps = [float(line) for line in out.split()]
    raw_rate = total / (stamps[-1] - stamps[0])
    started = next(t for t, n in progress if n > 0)
    stored_rate = total / (progress[-1][0] - started)
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(db.events))
    print(
        f"Ingest throughput ({total:,} events, {devices} devices publishing at once, "
        "one worker, SQLite synchronous=FULL)"
    )
    print(
        f"  stored durably {stored_rate:,.0f} events/s ({stored:,} rows); "
        f"mosquitto_sub on the same stream {raw_rate:,.0f} events/s; "
        f"ratio {stored_rate / raw_rate:.2f}"
    )


def bench_backlog(tmp: Path, events: int = 100_000) -> None:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from edge.agent.agent import EdgeAgent
    from edge.agent.config import EdgeConfig
    from hafen.config import validate_config
    from hafen.protocol import AccessDecision
    from hafen.signing import public_key_text

    broker = LocalBroker(tmp / "backlog-broker")
    key = Ed25519PrivateKey.generate()
    Device.pin_factory = MockFactory()
    cfg = validate_config(
        {
            "site": {"id": "remote"},
            "device": {"id": "door-1"},
            "store": {"path": str(tmp / "backlog-edge.db")},
            "cards": {"hash_key": KEY.hex()},
            "reader": {"path": "udp:127.0.0.1:49999", "targets": ["106A"]},
            "door": {"strike": {"pin": 17}},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "reconnect_max_seconds": 1},
            "hub": {"public_keys": [public_key_text(key)]},
        },
        EdgeConfig,
    )
    store = EdgeStore(cfg.store.path, auto_checkpoint=False)
    now = datetime.now(UTC)
    with store.write() as conn:
        for i in range(events):
            decision = AccessDecision(card=f"{i:032x}", allowed=True, member="m1")
            store.append_event(conn, decision, now)
    agent = EdgeAgent(cfg, store)
    agent.start()  # the uplink is down: the broker is not running yet
    time.sleep(2)
    engine = db.connect(f"sqlite:///{tmp / 'backlog-hub.db'}")
    register(engine, {"remote": ["door-1"]}, ["m1"])
    broker.start()
    t0 = time.monotonic()
    worker = IngestWorker(engine, "127.0.0.1", broker.port, key, card_key=KEY)
    worker.start()
    while worker.stored < events and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    drained = time.monotonic() - t0
    while agent.store.pending_events(limit=1) and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    forgotten = time.monotonic() - t0
    agent.stop()
    worker.stop()
    broker.stop()
    store.close()
    print(f"Backlog drain ({events:,} events queued at an edge while the broker was down)")
    print(
        f"  all stored at the hub {drained:.1f} s after the broker came back; "
        f"edge outbox empty (hub acks) after {forgotten:.1f} s"
    )


def main() -> None:
    if sys.argv[1:2] == ["--sites"]:
        names, port, public_key, state = sys.argv[2:6]
        run_sites(names.split(","), int(port), public_key, Path(state))
        return
    if not shutil.which("mosquitto"):
        raise SystemExit("mosquitto is not installed (make setup installs it)")
    only_ingest = sys.argv[1:2] == ["ingest"]  # `network.py ingest`: that figure alone
    with tempfile.TemporaryDirectory(prefix="hafen-netbench-") as name:
        tmp = Path(name)
        with LocalBroker(tmp / "broker") as broker:
            if not only_ingest:
                bench_list_sizes(tmp, broker)
                bench_revocation(tmp, broker)
            bench_ingest(tmp, broker)
        if not only_ingest:
            bench_backlog(tmp)
    print(f"(machine: {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
