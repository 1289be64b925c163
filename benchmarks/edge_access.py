"""Edge access benchmark: decision latency, tap-to-relay latency, agent memory and idle CPU.

Run: ``.venv/bin/python benchmarks/edge_access.py`` (``make bench``). Prints figures, asserts
nothing. Every figure is measured with 100,000 cards in the local store.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from edge.agent.access_list import apply_snapshot
from edge.agent.store import EdgeStore
from hafen.acl import AccessList
from hafen.cards import card_hash

CARDS = 100_000
KEY = bytes.fromhex("0123456789abcdef" * 2)
SITE = "bench-site"
HAFEN = str(Path(sys.executable).parent / "hafen")


def uid(i: int) -> bytes:
    return bytes([0x04]) + i.to_bytes(6, "big")


def build_acl() -> AccessList:
    """100,000 members, one card each, spread over three plans (one with opening hours)."""
    plans: list[dict[str, Any]] = [
        {"id": "flex"},
        {"id": "region", "sites": [SITE, "other-site"]},
        {
            "id": "days",
            "windows": [
                {
                    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "start": "00:00",
                    "end": "24:00",
                }
            ],
        },
    ]
    members = [
        {
            "id": f"m{i}",
            "grants": [
                {
                    "plan": plans[i % 3]["id"],
                    "valid_from": "2024-01-01",
                    "valid_until": "2099-12-31",
                }
            ],
        }
        for i in range(CARDS)
    ]
    cards = [{"hash": card_hash(KEY, uid(i)), "member": f"m{i}"} for i in range(CARDS)]
    return AccessList.model_validate(
        {"site": SITE, "version": 1, "plans": plans, "members": members, "cards": cards}
    )


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(name: str, samples_ms: list[float]) -> str:
    return (
        f"  {name:<44} p50 {pct(samples_ms, 50):7.3f} ms   p95 {pct(samples_ms, 95):7.3f} ms"
        f"   p99 {pct(samples_ms, 99):7.3f} ms   (n={len(samples_ms)})"
    )


def make_agent(tmp: Path, port: int):
    """An agent exactly as ``hafen edge run`` builds it, on mock pins."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from edge.agent.agent import EdgeAgent
    from edge.agent.config import EdgeConfig
    from hafen.config import validate_config

    Device.pin_factory = MockFactory()
    cfg = validate_config(config_dict(tmp, port), EdgeConfig)
    store = EdgeStore(cfg.store.path, cfg.store.synchronous, auto_checkpoint=False)
    return EdgeAgent(cfg, store), store


def sample_cards(n: int) -> list[str]:
    known = [card_hash(KEY, uid(random.randrange(CARDS))) for _ in range(n)]
    return [h if i % 10 else "f" * 32 for i, h in enumerate(known)]  # 10 % unknown cards


def bench_decisions(tmp: Path, n: int = 20_000) -> None:
    from datetime import UTC, datetime

    from hafen.protocol import AccessDecision

    agent, store = make_agent(tmp, 9)
    decision_ms, baseline_ms = [], []
    for card in sample_cards(n):
        t0 = time.perf_counter()
        agent.decide(card)
        decision_ms.append((time.perf_counter() - t0) * 1e3)
        # The raw baseline: the same durable outbox commit with no decision before it.
        t0 = time.perf_counter()
        store.record_event(AccessDecision(card=card, allowed=False), datetime.now(UTC))
        baseline_ms.append((time.perf_counter() - t0) * 1e3)
    print(
        f"Decision latency (EdgeAgent.decide: card hash in -> decision and outbox row committed,"
        f" synchronous=FULL, {CARDS:,} cards)"
    )
    print(line("decide + commit", decision_ms))
    print(line("baseline: bare outbox commit", baseline_ms))
    print(f"  ratio p99 decision / baseline: {pct(decision_ms, 99) / pct(baseline_ms, 99):.2f}")
    during_snapshot(agent, tmp)
    agent.hardware.close()
    store.close()


def during_snapshot(agent, tmp: Path) -> None:
    """Decisions while the list updater verifies, decodes and applies a new 100,000-card
    snapshot, as it does when one arrives: its own store connection and thread, the
    collector paused and the switch interval the running agent sets."""
    import threading
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.agent import agent as agent_module
    from edge.agent.access_list import collector_paused
    from edge.agent.remote import AclUpdater
    from hafen import protocol
    from hafen.signing import seal

    key = Ed25519PrivateKey.generate()
    acl = build_acl().model_copy(update={"version": 2})
    message = seal(key, protocol.acl_header(acl, datetime.now(UTC)), protocol.acl_body(acl))
    del acl
    applier = EdgeStore(tmp / "edge.db", auto_checkpoint=False)
    updater = AclUpdater(
        applier, SITE, ZoneInfo("Europe/Berlin"), KEY, [key.public_key()], lambda: None
    )
    done = threading.Event()
    took: list[float] = []

    def apply() -> None:
        t0 = time.perf_counter()
        with collector_paused():
            updater.handle(message)
        took.append(time.perf_counter() - t0)
        done.set()

    sys.setswitchinterval(agent_module.SWITCH_INTERVAL)  # as EdgeAgent.start() does
    thread = threading.Thread(target=apply)
    samples = []
    cards = sample_cards(200_000)
    thread.start()
    for card in cards:
        if done.is_set():
            break
        t0 = time.perf_counter()
        agent.decide(card)
        samples.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.002)
    thread.join()
    applier.close()
    assert updater.version == 2, "the snapshot was not applied"
    print(
        line("decide + commit while a snapshot applies", samples)
        + f"   max {max(samples):.1f} ms   (apply took {took[0]:.1f} s)"
    )


CARD_SCRIPT = textwrap.dedent("""
    import sys
    from sim.card_emulator import EmulatedCard
    card = EmulatedCard(sys.argv[1])
    for i in range(int(sys.argv[2])):
        uid = bytes([0x04]) + (i * 7919 % 100000).to_bytes(6, "big")
        read_at = card.present(uid, timeout=3)
        print(read_at if read_at is not None else "none", flush=True)
""")


def bench_tap_to_relay(tmp: Path, taps: int = 200) -> None:
    from gpiozero import Device

    agent, store = make_agent(tmp, random.randrange(40000, 60000))
    cfg = agent.cfg
    reader_saw: list[float] = []
    forward = agent.reader._on_card

    def on_card(read) -> None:
        reader_saw.append(read.read_at)
        forward(read)

    agent.reader._on_card = on_card
    agent.start()
    relay = Device.pin_factory.pin(17)
    t0 = time.monotonic()
    relay.clear_states()
    out = subprocess.run(
        [sys.executable, "-c", CARD_SCRIPT, cfg.reader.path, str(taps)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    time.sleep(0.3)
    agent.stop()
    store.close()
    answered = [float(v) for v in out.stdout.split() if v != "none"]
    rises, t = [], t0
    for state in relay.states[1:]:
        t += state.timestamp
        if state.state:
            rises.append(t)
    if not (len(rises) == len(answered) == len(reader_saw)):
        raise SystemExit(f"{len(answered)} taps, {len(reader_saw)} reads, {len(rises)} pulses")
    pairs = list(zip(answered, reader_saw, rises, strict=True))
    print("Tap-to-relay latency (nfcpy UDP reader, card process -> agent -> mock relay pin)")
    print(
        line("card answered (listen returned) -> relay high", [(r - a) * 1e3 for a, _, r in pairs])
    )
    print(
        line(
            "reader has the UID -> relay high (agent's share)", [(r - s) * 1e3 for _, s, r in pairs]
        )
    )


def config_dict(tmp: Path, port: int) -> dict:
    return {
        "site": {"id": SITE},
        "device": {"id": "door-1"},
        "store": {"path": str(tmp / "edge.db")},
        "cards": {"hash_key": KEY.hex()},
        "reader": {"path": f"udp:127.0.0.1:{port}", "targets": ["106A"], "poll_interval": 0.05},
        "door": {
            "unlock_seconds": 0.01,
            "strike": {"pin": 17},
            "contact": {"pin": 27},
            "exit_button": {"pin": 22},
            "led": {"pin": 23},
            "buzzer": {"pin": 24},
        },
    }


def bench_process(tmp: Path, idle_seconds: float = 20.0) -> None:
    """Resident memory and idle CPU of ``hafen edge run --simulate`` on the 100,000-card store,
    linked to a broker as a networked door is (paho, signing, its three connections)."""
    from _hub import register
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hafen.signing import public_key_text
    from hub import db
    from hub.ingest.worker import IngestWorker
    from sim.broker import LocalBroker

    broker = LocalBroker(tmp / "broker").start()
    key = Ed25519PrivateKey.generate()
    engine = db.connect(f"sqlite:///{tmp / 'hub.db'}")
    register(engine, {SITE: ["door-1"]}, [f"m{i}" for i in range(CARDS)])
    hub = IngestWorker(engine, "127.0.0.1", broker.port, key, card_key=KEY)
    hub.start()  # takes the outbox the decision benchmark filled, and acknowledges it
    port = random.randrange(40000, 60000)
    config = tmp / "edge.toml"
    cfg = config_dict(tmp, port)
    cfg["mqtt"] = {"host": "127.0.0.1", "port": broker.port}
    cfg["hub"] = {"public_keys": [public_key_text(key)]}
    config.write_text(toml(cfg))
    log = tmp / "agent.log"
    proc = subprocess.Popen(
        [HAFEN, "edge", "run", "-c", str(config), "--simulate", "--no-walk-through"],
        stderr=log.open("w"),
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while "door agent running" not in log.read_text():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the agent did not start:\n{log.read_text()}")
            time.sleep(0.1)
        subprocess.run(
            [sys.executable, "-c", CARD_SCRIPT, f"udp:127.0.0.1:{port}", "20"],
            check=True,
            capture_output=True,
            cwd=Path(__file__).parents[1],
        )
        outbox = sqlite3.connect(tmp / "edge.db")
        drain_deadline = time.monotonic() + 120
        while outbox.execute("SELECT count(*) FROM outbox").fetchone()[0]:
            if time.monotonic() > drain_deadline:
                raise SystemExit("the hub did not take the outbox within 120 s")
            time.sleep(0.2)
        outbox.close()
        time.sleep(1.0)
        rss, hwm = proc_status(proc.pid, "VmRSS"), proc_status(proc.pid, "VmHWM")
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle_seconds)
        cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0) * 100
    finally:
        proc.terminate()
        proc.wait(10)
        hub.stop()
        broker.stop()
    print(
        f"Agent process (hafen edge run --simulate with its MQTT link, {CARDS:,} cards,"
        " after 20 taps)"
    )
    print(f"  resident memory {rss / 1024:.1f} MB (peak {hwm / 1024:.1f} MB)")
    print(f"  idle CPU {cpu:.2f} % of one core over {idle_seconds:.0f} s")


def toml(cfg: dict) -> str:
    out = []
    for section, values in cfg.items():
        out.append(f"[{section}]")
        for key, value in values.items():
            out.append(f"{key} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def proc_status(pid: int, field: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hafen-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        acl = build_acl()
        store = EdgeStore(tmp / "edge.db")
        count = apply_snapshot(store, acl, SITE, ZoneInfo("Europe/Berlin"), KEY)
        print(
            f"Store: {count:,} cards applied in {time.perf_counter() - t0:.1f} s "
            f"(file {os.path.getsize(tmp / 'edge.db') / 1e6:.1f} MB)"
        )
        store.close()
        bench_decisions(tmp)
        bench_tap_to_relay(tmp)
        bench_process(tmp)
        print(f"(machine: {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
