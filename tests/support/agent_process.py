"""The door agent as its own process (`hafen edge run`), for tests that kill it or damage
its store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.agent_memory import HAFEN
from tests.support.edge import edge_config_dict, toml_text
from tests.support.waiting import wait_for


def write_config(
    tmp_path: Path,
    port: int,
    sections: dict | None = None,
    poll_interval: float = 0.1,
    **door: object,
) -> Path:
    """The test door's config (tests.support.edge) for an agent process on the UDP reader at
    ``port``, ``sections`` laid over it (``[mqtt]``, ``[hub]`` ...), as a file."""
    door = {"unlock_seconds": 0.02, "held_open_seconds": 30.0, **door}
    config = edge_config_dict(tmp_path, reader=f"udp:127.0.0.1:{port}", **door)
    # The strike and the contact only, as these processes always ran: with the exit button,
    # LED and buzzer wired too, one stopped slowly under a loaded CI (left for a look).
    for part in ("exit_button", "led", "buzzer"):
        config["door"].pop(part)
    config["store"].pop("synchronous")  # the agent's default, as on a Pi
    config["reader"]["poll_interval"] = poll_interval
    config.update(sections or {})
    path = tmp_path / "edge.toml"
    path.write_text(toml_text(config))
    return path


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
