"""The edge under test: its config (as a dict or TOML), the card key, gpiozero mock pins, free
UDP ports for nfcpy's UDP reader, a configured agent running on them, and a PIR sensing motion."""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

import pytest
import tomli_w
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.agent.access_list import apply_snapshot
from edge.agent.agent import EdgeAgent
from edge.agent.config import EdgeConfig
from edge.agent.store import EdgeStore
from hafen.acl import AccessList
from hafen.config import validate_config
from sim.card_emulator import EmulatedCard
from sim.door import mock_pin

#: A fixed card-hash key for tests (16 bytes, hex).
CARD_KEY_HEX = "0123456789abcdef" * 2
CARD_KEY = bytes.fromhex(CARD_KEY_HEX)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mock_pins():
    """Fresh gpiozero mock pins for each test."""
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.close()
    Device.pin_factory = MockFactory()


def edge_config_dict(tmp_path: Path, reader: str = "udp:127.0.0.1:54321", **door) -> dict:
    """A complete edge config as a dict, with the door section overridable."""
    door_section = {
        "unlock_seconds": 0.5,
        "held_open_seconds": 1.0,
        "strike": {"pin": 17},
        "contact": {"pin": 27},
        "exit_button": {"pin": 22},
        "led": {"pin": 23},
        "buzzer": {"pin": 24},
    }
    door_section.update(door)
    return {
        "site": {"id": "leipzig-ost", "timezone": "Europe/Berlin"},
        "device": {"id": "front-door"},
        "store": {"path": str(tmp_path / "edge.db"), "synchronous": "normal"},
        "cards": {"hash_key": CARD_KEY_HEX},
        "reader": {"path": reader, "targets": ["106A"], "poll_interval": 0.02},
        "door": door_section,
    }


def toml_text(config: dict) -> str:
    """Write a config dict as TOML (tomli_w, which `hafen provision enrol` writes with)."""
    return tomli_w.dumps(config)


ANNA = bytes.fromhex("04A1B2C3D4E5F6")
STRANGER = bytes.fromhex("04E5F60718293A")


def site_acl(cards: dict[bytes, str], version: int = 1, site: str = "leipzig-ost") -> AccessList:
    """An access list where every member has the network-wide, all-hours plan."""
    members = sorted(set(cards.values()))
    return AccessList.model_validate(
        {
            "site": site,
            "version": version,
            "plans": [{"id": "flex"}],
            "members": [{"id": m, "grants": [{"plan": "flex"}]} for m in members],
            "cards": [{"uid": uid.hex(), "member": m} for uid, m in cards.items()],
        }
    )


def make_config(tmp_path: Path, sections: dict | None = None, **door) -> EdgeConfig:
    """A valid config on a free UDP reader; ``sections`` adds or replaces whole sections."""
    reader = f"udp:127.0.0.1:{free_udp_port()}"
    raw = edge_config_dict(tmp_path, reader=reader, **door) | (sections or {})
    return validate_config(raw, EdgeConfig)


@contextmanager
def running_agent(
    tmp_path: Path,
    cards: dict[bytes, str] | None = None,
    sections: dict | None = None,
    wall_clock=None,
    **door,
):
    """Start an agent with its store and ACL; yields (agent, config, card)."""
    cfg = make_config(tmp_path, sections, **door)
    store = EdgeStore(cfg.store.path, cfg.store.synchronous)
    acl = site_acl(cards if cards is not None else {ANNA: "anna"})
    apply_snapshot(store, acl, cfg.site.id, ZoneInfo(cfg.site.timezone), cfg.cards.key())
    agent = EdgeAgent(cfg, store, **({"wall_clock": wall_clock} if wall_clock else {}))
    agent.start()
    try:
        yield agent, cfg, EmulatedCard(cfg.reader.path)
    finally:
        agent.stop()
        store.close()


def outbox(store: EdgeStore) -> list[tuple[str, dict]]:
    """Every event in the outbox as (kind, body), oldest first."""
    rows = store.conn.execute("SELECT kind, body FROM outbox ORDER BY seq").fetchall()
    return [(kind, json.loads(body)) for kind, body in rows]


def rises(pin) -> int:
    """How often a mock pin went from low to high."""
    levels = [s.state for s in pin.states]
    return sum(1 for a, b in itertools.pairwise(levels) if not a and b)


#: The pin of the PIR in a room (the agent samples it through gpiozero).
PIR = 5


def motion() -> None:
    """The PIR raises its output for a while, as a real module holds it (gpiozero samples it)."""
    mock_pin(PIR).drive_high()
    time.sleep(0.3)
    mock_pin(PIR).drive_low()
    time.sleep(0.3)  # and stays low a moment (real modules block re-triggering for ~2.5 s)
