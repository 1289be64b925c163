"""The agent as a process, driven through its CLI: real nfcpy UDP reader, mock pins, kill -9."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sim.card_emulator import EmulatedCard
from tests.support.agent_memory import HAFEN
from tests.support.agent_process import start_agent, write_config
from tests.support.edge import free_udp_port
from tests.support.waiting import wait_for

MEMBER_CARDS = [bytes([0x04, 0x10, i, 0x22, 0x33, 0x44, 0x55]) for i in range(20)]


def write_acl(tmp_path: Path) -> Path:
    acl = {
        "site": "leipzig-ost",
        "version": 1,
        "plans": [{"id": "flex"}],
        "members": [{"id": f"m{i}", "grants": [{"plan": "flex"}]} for i in range(20)],
        "cards": [{"uid": uid.hex(), "member": f"m{i}"} for i, uid in enumerate(MEMBER_CARDS)],
    }
    path = tmp_path / "acl.json"
    path.write_text(json.dumps(acl))
    return path


def test_cli_loads_an_acl_and_a_tapped_card_opens_the_simulated_door(tmp_path):
    port = free_udp_port()
    config = write_config(tmp_path, port)
    loaded = subprocess.run(
        [HAFEN, "edge", "load-acl", str(write_acl(tmp_path)), "-c", str(config)],
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "applied access list version 1: 20 cards" in loaded.stdout
    pin_log, log = tmp_path / "pins.log", tmp_path / "agent.log"
    agent = start_agent(config, pin_log, log)
    try:
        tap = subprocess.run(
            [HAFEN, "edge", "tap", MEMBER_CARDS[3].hex(), "--reader", f"udp:127.0.0.1:{port}"],
            capture_output=True,
            text=True,
        )
        assert tap.returncode == 0 and "card read by the reader" in tap.stdout
        assert wait_for(lambda: "GPIO17 1" in pin_log.read_text(), 3)
        assert wait_for(lambda: "GPIO17 0" in pin_log.read_text(), 3)
        stranger = subprocess.run(
            [HAFEN, "edge", "tap", "04FFFFFFFFFF01", "--reader", f"udp:127.0.0.1:{port}"],
            capture_output=True,
            text=True,
        )
        assert stranger.returncode == 0
        assert wait_for(lambda: "unknown_card" in log.read_text(), 3)
        assert pin_log.read_text().count("GPIO17 1") == 1
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
    text = log.read_text()
    assert "door agent stopped; door left secure" in text
    for uid in (MEMBER_CARDS[3], bytes.fromhex("04FFFFFFFFFF01")):  # no raw UID in any log line
        assert uid.hex() not in text.lower() and uid.hex().upper() not in text


def _burst(port: int, stop: threading.Event) -> None:
    card = EmulatedCard(f"udp:127.0.0.1:{port}")
    while not stop.is_set():
        card.present(random.choice(MEMBER_CARDS), timeout=0.5)


@pytest.mark.slow
def test_kill_9_during_a_burst_loses_no_decision_the_relay_acted_on(tmp_path):
    port = free_udp_port()
    config = write_config(tmp_path, port)
    subprocess.run(
        [HAFEN, "edge", "load-acl", str(write_acl(tmp_path)), "-c", str(config)],
        check=True,
        capture_output=True,
    )
    pin_log, log = tmp_path / "pins.log", tmp_path / "agent.log"
    kills = 3
    for _ in range(kills):
        agent = start_agent(config, pin_log, log)
        stop = threading.Event()
        burst = threading.Thread(target=_burst, args=(port, stop))
        burst.start()
        time.sleep(random.uniform(1.0, 2.0))
        agent.send_signal(signal.SIGKILL)
        agent.wait(5)
        stop.set()
        burst.join(5)

    db = sqlite3.connect(tmp_path / "edge.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT seq, event_id, kind, body FROM outbox ORDER BY seq").fetchall()
    decisions = [json.loads(body) for _, _, kind, body in rows if kind == "door.decision"]
    assert decisions and all(d["allowed"] for d in decisions)
    assert len({event_id for _, event_id, _, _ in rows}) == len(rows)
    assert [seq for seq, *_ in rows] == sorted(seq for seq, *_ in rows)
    relay_opened = sum(1 for line in pin_log.read_text().splitlines() if line.endswith("GPIO17 1"))
    # Every pulse of the relay has its decision in the outbox; at most one decision per kill
    # can be committed whose pulse the kill prevented.
    print(f"relay opened {relay_opened} times, {len(decisions)} decisions")
    assert relay_opened >= 10
    assert relay_opened <= len(decisions) <= relay_opened + kills
