"""The door agent as a process on a broker, for measuring what it holds: ``hafen edge run
--simulate`` (mock pins, nfcpy's UDP reader) linked to a real mosquitto, its peak memory read
from /proc, and what anyone on the broker can throw at it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent.access_list import apply_snapshot
from edge.agent.store import EdgeStore
from hafen import protocol
from hafen.acl import AccessList
from hafen.protocol import DeviceState
from hafen.signing import public_key_text, seal
from tests.support.clients import close_client
from tests.support.edge import CARD_KEY, CARD_KEY_HEX, free_udp_port, site_acl, toml_text

HAFEN = str(Path(sys.executable).parent / "hafen")
SITE, DEVICE = "leipzig-ost", "front-door"
MEMBER = bytes.fromhex("04A1B2C3D4E5F6")


def proc_status_kib(pid: int, field: str) -> int:
    """A field of /proc/PID/status in kB (VmHWM: the peak resident set; VmRSS: now)."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    raise KeyError(field)


class Publisher:
    """Anyone on the broker, publishing as fast as the broker takes it."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, count: int = 1, retain: bool = False) -> None:
        infos = [self.client.publish(topic, payload, qos=1, retain=retain) for _ in range(count)]
        for info in infos:
            info.wait_for_publish(60)

    def close(self) -> None:
        close_client(self.client)


def forged_list(size: int = 64 * 1024) -> bytes:
    """A list for the site signed by a key no door trusts, padded to ``size`` bytes."""
    doc = AccessList(site=SITE, version=99)
    header = protocol.acl_header(doc, datetime.now(UTC))
    body = protocol.acl_body(doc)
    return seal(Ed25519PrivateKey.generate(), header, body + os.urandom(size - len(body) - 200))


class AgentProcess:
    """``hafen edge run --simulate`` with an [mqtt] link to the broker on ``port``."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.reader = f"udp:127.0.0.1:{free_udp_port()}"
        self.hub_key = Ed25519PrivateKey.generate()
        self.log = tmp / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> Path:
        raw = {
            "site": {"id": SITE, "timezone": "Europe/Berlin"},
            "device": {"id": DEVICE},
            "store": {"path": str(self.tmp / "edge.db")},
            "cards": {"hash_key": CARD_KEY_HEX},
            "reader": {"path": self.reader, "targets": ["106A"], "poll_interval": 0.05},
            "door": {"unlock_seconds": 0.05, "strike": {"pin": 17}, "contact": {"pin": 27}},
            "mqtt": {"host": "127.0.0.1", "port": self.port, "reconnect_max_seconds": 2},
            "hub": {"public_keys": [public_key_text(self.hub_key)]},
        }
        path = self.tmp / "edge.toml"
        path.write_text(toml_text(raw))
        store = EdgeStore(self.tmp / "edge.db")
        acl = site_acl({MEMBER: "anna"}, site=SITE)
        apply_snapshot(store, acl, SITE, ZoneInfo("Europe/Berlin"), CARD_KEY)
        store.close()
        return path

    def start(self, timeout: float = 30.0) -> AgentProcess:
        """Start it and wait until its birth is on the broker."""
        births: list[DeviceState] = []
        watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        watcher.on_message = lambda _c, _u, m: births.append(
            DeviceState.model_validate_json(m.payload)
        )
        watcher.connect("127.0.0.1", self.port)
        watcher.subscribe(protocol.state_topic(SITE, DEVICE), qos=1)
        watcher.loop_start()
        self.process = subprocess.Popen(
            [HAFEN, "edge", "run", "-c", str(self.config()), "--simulate", "--no-walk-through"],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )
        try:
            deadline = time.monotonic() + timeout
            while not any(b.online for b in births):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"the agent did not come online:\n{self.log.read_text()}")
                time.sleep(0.05)
        finally:
            close_client(watcher)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def peak_kib(self) -> int:
        return proc_status_kib(self.pid, "VmHWM")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
