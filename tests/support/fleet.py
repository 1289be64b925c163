"""A fleet to update (issue 17): the provisioned network over TLS (tests.support.provisioned)
whose hub keeps releases and runs rollouts, and doors enrolled through the shipped commands
that run as their own processes, started by the launcher systemd starts
(provisioning/launch.py) from a release directory, on simulated hardware.

Each door starts on this checkout's hafen (the venv the tests run in, as release
``RUNNING``), with ``[updates]`` pointing at the hub over HTTPS; a release made by
tests.support.wheelhouse is a real one, installed by the door itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w
from sqlalchemy import select

from edge.agent.config import load_edge_config
from edge.updater.release_dirs import ReleaseDirs
from hafen import __version__
from hafen.signing import public_key_text
from hub import db
from hub.keys import generate_key
from hub.services.releases import add_release
from sim.card_emulator import EmulatedCard
from tests.support.edge import free_udp_port
from tests.support.provisioned import ProvisionedNetwork, hafen, wiring
from tests.support.waiting import wait_for
from tests.support.wheelhouse import Patch, wheelhouse

#: The version the doors run at the start: this checkout's.
RUNNING = __version__
LAUNCH = Path(__file__).parents[2] / "provisioning" / "launch.py"
SITE = "leipzig-ost"
#: How the doors run: on simulated hardware, nobody walking through.
SIMULATED = ("--simulate", "--no-walk-through", "--people", "0")


@dataclass
class Taps:
    """Cards presented to one door, one after another, and when each was read."""

    card: EmulatedCard
    every: float
    read: list[tuple[float, float]] = field(default_factory=list)
    missed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Taps:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.monotonic()
            uid = bytes([0x04, 0x7A]) + os.getpid().to_bytes(2, "big") + n.to_bytes(3, "big")
            read_at = self.card.present(uid, timeout=20.0)
            if read_at is None:
                self.missed += 1
            else:
                self.read.append((started, read_at))
            self._stop.wait(max(0.0, self.every - (time.monotonic() - started)))


class FleetDoor:
    """One door of the fleet: its Pi's directories, its process group, its reader."""

    def __init__(self, fleet: Fleet, device: str) -> None:
        self.fleet, self.device = fleet, device
        self.pi = fleet.root / f"pi-{device}"
        self.config = self.pi / "etc" / "edge.toml"
        self.log = self.pi / "agent.log"
        self.dirs = ReleaseDirs(self.pi / "opt")
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def enrol(self) -> FleetDoor:
        network = self.fleet.network
        token = network.token_for(SITE, self.device)
        self.pi.mkdir()
        hardware = self.pi / "wiring.toml"
        hardware.write_text(tomli_w.dumps(wiring(free_udp_port())))
        hafen(
            "provision", "enrol", network.url, token, "--etc", str(self.pi / "etc"),
            "--state-dir", str(self.pi / "state"), "--hardware", str(hardware),
            "--hub-ca", str(network.files.ca_cert),
        )  # fmt: skip
        # Enrolment wrote [updates] (the hub, its CA, the release key); this Pi's own parts.
        config = tomllib.loads(self.config.read_text())
        assert config["updates"]["release_keys"] == [public_key_text(self.fleet.release_key)]
        config["updates"].update(root=str(self.dirs.root), gate_seconds=self.fleet.gate_seconds)
        self.config.write_text(tomli_w.dumps(config))
        # This checkout's venv as the release the door runs now.
        release = self.dirs.staging(RUNNING)
        (release / "bin").mkdir()
        (release / "bin" / "hafen").symlink_to(Path(sys.executable).parent / "hafen")
        self.dirs.complete(RUNNING)
        self.dirs.switch_to(RUNNING)
        return self

    @property
    def card(self) -> EmulatedCard:
        """A card held to this door's reader."""
        return EmulatedCard(load_edge_config(self.config).reader.path)

    def start(self, wait: bool = True) -> FleetDoor:
        """Start the door through the launcher; ``wait``: until it says it runs."""
        env = {
            **os.environ,
            "HAFEN_ROOT": str(self.dirs.root),
            "STATE_DIRECTORY": str(self.pi / "state"),
            "XDG_STATE_HOME": str(self.pi / "sim"),
            "HAFEN_LOG_LEVEL": "INFO",
        }
        env.pop("PYTHONPATH", None)
        starts = self.log_text().count("door agent running")
        command = [sys.executable, str(LAUNCH), "edge", "run", "--config", str(self.config)]
        command += [*SIMULATED, "--pin-log", str(self.pi / "pins.log")]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            env=env,
            start_new_session=True,  # the door and the versions it hands over to: one group
        )
        self._starts = starts
        if wait:
            self.wait_running()
        return self

    def wait_running(self, timeout: float = 30) -> None:
        started = lambda: self.log_text().count("door agent running") > self._starts  # noqa: E731
        assert wait_for(started, timeout), self.log_text()[-3000:]

    def kill(self) -> None:
        """kill -9 of the door and whatever it started (systemd kills the unit's cgroup)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        while _group_alive(self.process.pid):
            time.sleep(0.05)
        self.process = None

    def freeze_at(self, phase: str, timeout: float) -> str | None:
        """Stop the door's processes (SIGSTOP) as soon as its update job is in ``phase``;
        returns the phase it is frozen in (None: it never got there in time)."""
        assert self.process is not None
        job = self.pi / "state" / "update.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f'"phase":"{phase}"' in _read(job):
                os.killpg(self.process.pid, signal.SIGSTOP)
                return str(json.loads(_read(job)).get("phase"))
            time.sleep(0.005)
        return None

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _group_alive(self.process.pid):
            self.process.poll()  # the launcher's process, once it handed over and ended
            time.sleep(0.1)
        if _group_alive(self.process.pid):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies do not count: an orphan's is
    reaped by whoever adopted it, in its own time)."""
    done = subprocess.run(["ps", "-g", str(pgid), "-o", "stat="], capture_output=True, text=True)
    return any(not state.startswith("Z") for state in done.stdout.split())


class Fleet:
    """The network and its doors (see the module)."""

    def __init__(self, root: Path, gate_seconds: float = 30.0) -> None:
        self.root = root
        self.gate_seconds = gate_seconds
        self.release_key = generate_key(root / "hub-release.pem")
        self.network = ProvisionedNetwork(
            root,
            https=True,
            releases=root / "hub-releases",
            release_keys=(public_key_text(self.release_key),),
        )
        self.network.add_site(SITE)
        self.network.publisher.publish_site(SITE)  # a list for the doors' health gate
        self.doors: list[FleetDoor] = []

    def door(self, device: str) -> FleetDoor:
        door = FleetDoor(self, device).enrol().start()
        self.doors.append(door)
        return door

    def release(self, version: str, patch: Patch | None = None) -> None:
        """Build a real release of hafen at ``version`` and add it as `hafen hub release add`
        does."""
        wheels = wheelhouse(version, self.root / f"wheels-{version}", patch)
        assert self.network.releases is not None
        add_release(self.network.engine, self.network.releases, wheels, version, self.release_key)

    def software(self, device: str) -> str | None:
        """The version the door last said it runs (its state)."""
        s = db.device_states.c
        with self.network.engine.connect() as conn:
            return conn.scalar(select(s.software).where(s.site == SITE, s.device == device))

    def online(self, device: str) -> bool:
        s = db.device_states.c
        with self.network.engine.connect() as conn:
            return bool(conn.scalar(select(s.online).where(s.site == SITE, s.device == device)))

    def close(self) -> None:
        for door in self.doors:
            door.stop()
        self.network.close()


def events_of(fleet: Fleet, device: str, kind: str) -> list[dict]:
    """The events of ``kind`` the hub stored from ``device``, in the door's order."""
    e = db.events.c
    query = (
        select(e.seq, e.data)
        .where(e.site == SITE, e.device == device, e.kind == kind)
        .order_by(e.epoch, e.seq)
    )
    with fleet.network.engine.connect() as conn:
        return [{"seq": seq, **data} for seq, data in conn.execute(query)]


def fails_to_start(source: Path) -> None:
    """A patch for a release whose agent cannot start (it installs and imports well)."""
    runner = source / "edge" / "agent" / "runner.py"
    text = runner.read_text()
    start = "    notifier = sdnotify.SystemdNotifier()\n    service = DoorService("
    assert start in text, "the agent's start moved: mend this patch"
    raise_first = '    raise RuntimeError("this release cannot start (a test\'s patch)")\n'
    runner.write_text(text.replace(start, raise_first + start, 1))


def never_healthy(source: Path) -> None:
    """A patch for a release that starts and decides but never passes its health gate."""
    gate = source / "edge" / "agent" / "health_gate.py"
    gate.write_text(
        gate.read_text()
        + "\n\ndef unmet(agent: EdgeAgent) -> list[str]:  # noqa: F811 (a test's patch)\n"
        + '    return ["the reader is not ready (a test\'s patch)"]\n'
    )
