"""The door agent as its own process (`hafen edge run`), for tests that kill it or damage
its store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.agent_memory import HAFEN
from tests.support.edge import CARD_KEY_HEX
from tests.support.waiting import wait_for


def write_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "edge.toml"
    config.write_text(
        f"""
[site]
id = "leipzig-ost"

[device]
id = "front-door"

[store]
path = "{tmp_path / "edge.db"}"

[cards]
hash_key = "{CARD_KEY_HEX}"

[reader]
path = "udp:127.0.0.1:{port}"
targets = ["106A"]
poll_interval = 0.1

[door]
unlock_seconds = 0.02
strike = {{ pin = 17 }}
contact = {{ pin = 27 }}
"""
    )
    return config


def start_agent(config: Path, pin_log: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "HAFEN_LOG_LEVEL": "DEBUG"}  # even at DEBUG, no raw UID may be logged
    proc = subprocess.Popen(
        [
            HAFEN,
            "edge",
            "run",
            "--config",
            str(config),
            "--simulate",
            "--pin-log",
            str(pin_log),
            "--no-walk-through",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
        env=env,
    )
    assert wait_for(lambda: "door agent running" in log.read_text(), 15), log.read_text()
    return proc
