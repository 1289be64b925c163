"""Provisioning's figures (hafen issue 14), each beside its baseline in the same run.

1. **Add to first event.** From ``hafen provision device add`` at the hub to the new door's first
   event stored there: the token, ``hafen provision enrol`` on the "Pi" (key, request,
   certificate, config), the agent's start, its TLS connection, the hub's list reaching it, a
   tap, the event ingested. Target: at most 30 s. Beside it: a door configured by hand on a
   plain broker, from its agent's start to its first event stored (what enrolment adds).
2. **Ingest rate, TLS beside plain TCP.** The firehose stream of the ingest benchmark
   (benchmarks/firehose_stream.py), published by ``mosquitto_pub -l -q 1`` processes signed in
   as a client of their own, stored by one ingest worker signed in as ``hafen-ingest``: once
   over the broker's TLS listener, once over a plain listener of the same broker settings
   (same passwords, same rights). Pairs alternate their order; the ratio TLS/plain is the
   median of the pairs'. Target: at least 0.7.
3. **Revocation propagation, TLS beside plain.** Devices connected with their own client
   (and over TLS their certificate), one broker with both listeners, plain and TLS devices
   alternating; for each, the time from ``revoke`` (the hub's service: store, revocation
   list, the broker's plugin over that transport) to the device seeing its connection
   dropped. p50 and p99 per transport; the ratio is plain p50 / TLS p50 (at least 0.7: TLS
   makes it no more than that much slower).

Run: ``.venv/bin/python benchmarks/provisioned_network.py [--events N] [--repeat R] [--devices D]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from firehose_stream import build
from gpiozero import Device as GpioDevice
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, insert, select

from hafen import protocol
from hub import db
from hub.auth import Principal, Role
from hub.broker_rights import (
    AdminSession,
    BrokerRights,
    ServiceRights,
    device_rights,
    hub_services,
)
from hub.device_identity import DeviceAuthority
from hub.ingest.worker import IngestWorker
from hub.mqtt import BrokerLogin
from hub.pki import CaFiles, init_ca
from hub.services.revocation import revoke
from sim.broker import LocalBroker
from tests.support.edge import ANNA, CARD_KEY
from tests.support.network import TestHub, add_member, connected_edge
from tests.support.provisioned import ProvisionedNetwork, TlsBroker
from tests.support.tls import Device as TlsDevice, device_identity
from tests.support.waiting import wait_for

FIREHOSE = "bench-firehose"
ADMIN = Principal(user_id=0, username="bench", role=Role.NETWORK_ADMIN, sites=frozenset())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# -- 1. add to first event ------------------------------------------------------------------------


def first_event_enrolled(root: Path, devices: int) -> list[float]:
    net = ProvisionedNetwork(root)
    try:
        net.add_site("leipzig-ost")
        add_member(net.engine, "anna", ANNA)
        net.publisher.publish_site("leipzig-ost")
        took = []
        for n in range(devices):
            name = f"door-{n}"
            start = time.monotonic()
            door = net.enrol("leipzig-ost", name)  # device add, enrol, agent start
            assert wait_for(lambda d=door: d.agent.acl_updater.version >= 1, 30)
            assert door.card.present(ANNA) is not None
            assert wait_for(lambda d=name: _events(net.engine, d) >= 1, 30)
            took.append(time.monotonic() - start)
        return took
    finally:
        net.close()


def first_event_by_hand(root: Path, devices: int) -> list[float]:
    took = []
    with LocalBroker(root / "broker") as broker:
        hub = TestHub(root, broker).start()
        try:
            hub.add_member("anna", ANNA)
            for n in range(devices):
                name = f"door-{n}"
                start = time.monotonic()
                hub.add_device("leipzig-ost", name)
                hub.publisher.publish_site("leipzig-ost")
                (root / name).mkdir()
                GpioDevice.pin_factory = MockFactory()
                with connected_edge(root / name, hub, device=name) as (agent, card):
                    assert wait_for(lambda a=agent: a.acl_updater.version >= 1, 30)
                    assert card.present(ANNA) is not None
                    assert wait_for(lambda d=name: _events(hub.engine, d) >= 1, 30)
                    took.append(time.monotonic() - start)
        finally:
            hub.stop()
    return took


def _events(engine, device: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).where(db.events.c.device == device)) or 0


# -- the broker both transports share --------------------------------------------------------------


@dataclass
class Bench:
    """A broker with a TLS and a plain listener, the hub's clients and the firehose's."""

    root: Path
    files: CaFiles
    broker: TlsBroker
    passwords: dict[str, str]

    def port(self, tls: bool) -> int:
        port = self.broker.port if tls else self.broker.plain_port
        assert port is not None
        return port

    def login(self, name: str, tls: bool) -> BrokerLogin:
        if not tls:
            return BrokerLogin(name, self.passwords[name])
        f = self.files
        return BrokerLogin(name, self.passwords[name], f.ca_cert, f.hub_cert, f.hub_key)


def bench_broker(root: Path) -> Bench:
    files = CaFiles(root / "ca")
    init_ca(files, "bench", ["localhost"])
    broker = TlsBroker(root, files, plain=True).start()
    admin = (broker.secrets / "hafen-admin.password").read_text().strip()
    passwords = {"hafen-admin": admin, "hafen-ingest": "i" * 24, "hafen-publisher": "p" * 24}
    passwords[FIREHOSE] = "f" * 24
    bench = Bench(root, files, broker, passwords)
    rights = BrokerRights("localhost", broker.port, bench.login("hafen-admin", tls=True))
    try:
        for service in hub_services(passwords):
            rights.replace(service.commands())
        hose = ServiceRights(FIREHOSE, passwords[FIREHOSE], publish=(protocol.ALL_EVENTS,))
        rights.replace(hose.commands())
    finally:
        rights.close()
    return bench


# -- 2. ingest rate --------------------------------------------------------------------------------


def ingest_rate(
    root: Path, lanes: list[tuple[str, Path]], registry: dict, total: int, tls: bool
) -> float:
    bench = bench_broker(root)
    engine = db.connect(f"sqlite:///{root / 'hub.db'}")
    with engine.begin() as conn:
        for name, rows in registry.items():
            table = db.metadata.tables[name]
            conn.execute(insert(table), [_fit(table, row) for row in rows])
    worker = IngestWorker(
        engine, "localhost", bench.port(tls), Ed25519PrivateKey.generate(),
        card_key=CARD_KEY_OF_STREAM, login=bench.login("hafen-ingest", tls),
    )  # fmt: skip
    worker.start()
    assert wait_for(worker.client.connected.is_set, 10)
    pubs = []
    try:
        auth = ["-u", FIREHOSE, "-P", bench.passwords[FIREHOSE], "-p", str(bench.port(tls))]
        if tls:
            f = bench.files
            auth += ["--cafile", str(f.ca_cert), "--cert", str(f.hub_cert), "--key", str(f.hub_key)]
        for topic, path in lanes:
            with path.open("rb") as lines:
                pubs.append(
                    subprocess.Popen(
                        ["mosquitto_pub", "-h", "localhost", *auth, "-q", "1", "-l", "-t", topic],
                        stdin=lines,
                        stderr=subprocess.PIPE,
                    )
                )
        first = last = None
        stored = 0
        deadline = time.monotonic() + 600
        while stored < total and time.monotonic() < deadline:
            stored = _stored(engine)
            now = time.monotonic()
            if stored and first is None:
                first = now
            last = now
            time.sleep(0.02)
        if stored < total:
            raise SystemExit(
                f"only {stored} of {total} events stored ({'TLS' if tls else 'plain'})"
            )
        assert first is not None and last is not None
        return (total - 1) / max(last - first, 1e-6)
    finally:
        for p in pubs:
            if p.poll() is None:
                p.kill()
            p.wait()
        worker.stop()
        engine.dispose()
        bench.broker.stop()


def _stored(engine) -> int:
    with engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(db.events)) or 0
        samples = conn.scalar(select(func.count()).select_from(db.occupancy_samples)) or 0
    return events + samples


def _fit(table, row: dict) -> dict:
    """As benchmarks/firehose_driver.py: the table's columns, ISO times as datetimes."""
    fitted = {}
    for name, value in row.items():
        if name not in table.c:
            continue
        column = table.c[name]
        if isinstance(value, str) and column.type.python_type is datetime:
            value = datetime.fromisoformat(value)
        fitted[name] = value
    return fitted


#: The firehose stream's doors seal nothing with it; ingest needs a card key to start checking.
CARD_KEY_OF_STREAM = bytes.fromhex("f1e2d3c4b5a69788" * 2)


# -- 3. revocation propagation ---------------------------------------------------------------------


def revocation_times(root: Path, pairs: int) -> dict[bool, list[float]]:
    """Revoke ``pairs`` devices over each transport, alternating plain and TLS one by one on
    one broker (each side's admin connection over its own transport), so both meet the same
    load from whatever else the machine does. Times by transport (True: TLS)."""
    bench = bench_broker(root)
    engine = db.connect(f"sqlite:///{root / 'hub.db'}")
    sessions = {
        tls: AdminSession("localhost", bench.port(tls), bench.login("hafen-admin", tls))
        for tls in (False, True)
    }
    authorities = {
        tls: DeviceAuthority(
            ca=bench.files,
            rights=session.rights,
            broker_host="localhost",
            broker_port=bench.port(tls),
            public_keys=(),
            card_key=CARD_KEY,
        )
        for tls, session in sessions.items()
    }
    devices = 2 * pairs
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id="leipzig-ost", timezone="Europe/Berlin"))
        for n in range(devices):
            conn.execute(
                insert(db.devices).values(site="leipzig-ost", id=f"door-{n}", created_at=now)
            )
    took: dict[bool, list[float]] = {False: [], True: []}
    with ExitStack() as stack:
        stack.callback(bench.broker.stop)
        stack.callback(engine.dispose)
        for session in sessions.values():
            stack.callback(session.close)
        with authorities[True].rights() as rights:
            for n in range(devices):
                password = f"door-{n}-secret-password"
                rights.replace(device_rights("leipzig-ost", f"door-{n}", password))
        for n in range(devices):
            tls = n % 2 == 1
            name = f"leipzig-ost.door-{n}"
            dropped = threading.Event()
            dropped_at: list[float] = []
            client = _device_client(bench, root, n, tls)

            def on_drop(*_args: object, at: list[float] = dropped_at, d=dropped) -> None:
                at.append(time.monotonic())
                d.set()

            client.on_disconnect = on_drop
            stack.callback(client.loop_stop)
            if n < 2:  # each side's admin connection opened before it is timed
                with authorities[tls].rights():
                    pass
            start = time.monotonic()
            revoke(engine, authorities[tls], ADMIN, "leipzig-ost", f"door-{n}")
            if not dropped.wait(10):
                raise SystemExit(f"{name} was not dropped ({'TLS' if tls else 'plain'})")
            took[tls].append(dropped_at[0] - start)
            client.loop_stop()
    return took


def _device_client(bench: Bench, root: Path, n: int, tls: bool) -> mqtt.Client:
    name = f"leipzig-ost.door-{n}"
    login = (name, f"door-{n}-secret-password")
    if tls:
        identity = device_identity(root, bench.files, "leipzig-ost", f"door-{n}")
        device = TlsDevice(bench.port(True), bench.files, identity, name, login)
        assert device.connected.is_set(), f"{name} did not connect over TLS"
        device.client.reconnect_delay_set(60, 60)  # a drop stays a drop while it is timed
        return device.client
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    client.username_pw_set(*login)
    connected = threading.Event()
    client.on_connect = lambda _c, _u, _f, reason, _p: connected.set() if reason == 0 else None
    client.reconnect_delay_set(60, 60)
    client.connect("localhost", bench.port(False))
    client.loop_start()
    assert connected.wait(5), f"{name} did not connect over plain TCP"
    return client


# -- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--devices", type=int, default=25, help="revoked per transport")
    parser.add_argument("--doors", type=int, default=3, help="enrolled one after another")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hafen-provisioning-") as tmp:
        root = Path(tmp)
        results: dict[str, object] = {}

        enrolled = first_event_enrolled(root / "enrolled", args.doors)
        by_hand = first_event_by_hand(root / "by-hand", args.doors)
        results["add_to_first_event_s"] = {
            "enrolled_over_tls": {"p50": statistics.median(enrolled), "max": max(enrolled)},
            "by_hand_plain": {"p50": statistics.median(by_hand), "max": max(by_hand)},
            "ratio_enrolled_to_by_hand": statistics.median(enrolled) / statistics.median(by_hand),
        }
        print(json.dumps({"add_to_first_event_s": results["add_to_first_event_s"]}), flush=True)

        hose = build(args.events, CARD_KEY_OF_STREAM)
        lanes = hose.write(root / "stream")
        registry = json.loads((root / "stream" / "registry.json").read_text())
        rates: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.repeat):
            for tls in (True, False) if r % 2 == 0 else (False, True):
                run = root / f"ingest-{r}-{'tls' if tls else 'plain'}"
                rates[tls].append(ingest_rate(run, lanes, registry, hose.total, tls))
        ratios = [t / p for t, p in zip(rates[True], rates[False], strict=True)]
        results["ingest_events_per_s"] = {
            "tls": statistics.median(rates[True]),
            "plain": statistics.median(rates[False]),
            "ratio_tls_to_plain": statistics.median(ratios),
            "events": hose.total,
            "runs": rates[True] + rates[False],
        }
        print(json.dumps({"ingest_events_per_s": results["ingest_events_per_s"]}), flush=True)

        times = revocation_times(root / "revoke", args.devices)
        results["revocation_s"] = {
            "tls": {"p50": statistics.median(times[True]), "p99": percentile(times[True], 0.99)},
            "plain": {
                "p50": statistics.median(times[False]),
                "p99": percentile(times[False], 0.99),
            },
            "ratio_plain_to_tls_p50": statistics.median(times[False])
            / statistics.median(times[True]),
            "devices": args.devices,
        }
        print(json.dumps({"revocation_s": results["revocation_s"]}), flush=True)


if __name__ == "__main__":
    main()
