"""``hafen demo``: a whole simulated network on this machine, no hardware needed.

It starts a mosquitto with the shipped no-loss settings, the hub (store, ingest worker, API) in
this process, and one process per simulated site: a door agent whose members tap their cards,
move about and leave through scripted days (sim/demo_network.py). Taps are decided at the
door from the signed access list the hub sent and flow as events through the broker to the
hub, exactly as in a real network. Ctrl-C (or SIGTERM) stops everything and cleans up.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hub import db
from sim import demo_bookings, demo_network
from sim.broker import LocalBroker
from sim.demo_network import Logins, Network

if TYPE_CHECKING:
    from hafen.protocol import DeviceState
    from hub.server import HubServer

log = logging.getLogger("hafen.demo")
#: Seconds between the status lines that show the network working.
STATUS_EVERY = 30.0
#: Seconds a site process or the API gets to stop before it is killed / left behind.
STOP_TIMEOUT = 15.0


class DemoError(Exception):
    """The demo cannot run; the message says what to do about it."""


@dataclass(frozen=True)
class DemoOptions:
    sites: int = 5
    people: int = 12
    speed: float = 60.0
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path | None = None


def run_demo(options: DemoOptions) -> int:
    """Run the network until SIGINT or SIGTERM; returns the exit code (0: stopped as asked).

    Everything started is stopped in reverse order on the way out, whatever happens.
    """
    _require_mosquitto()
    with ExitStack() as stack:
        stop = _stop_on_signals(stack)
        listener = _listen(options.host, options.port)
        stack.callback(listener.close)
        state = _state_dir(options.state_dir, stack)
        _log_to(state / "hub.log", stack)
        broker = LocalBroker(state / "broker", die_with_parent=True).start()
        stack.callback(broker.stop)
        network = demo_network.plan_network(options.sites, options.people)
        hub = DemoHub(state, broker.port)
        stack.callback(hub.stop)
        demo_network.seed_hub(hub.engine, network, hub.card_key)
        logins = demo_network.create_logins(hub.engine, network)
        booked = demo_bookings.book_demo_days(hub.engine, network, logins)
        hub.start(listener)
        hub.publisher.publish_sites({site.id for site in network.sites})
        sites = SiteProcesses(hub, network, state, options.speed, broker.port)
        stack.callback(sites.stop)
        sites.start()
        _banner(options, network, logins, state, booked)
        code = _watch(stop, hub, sites, len(network.sites))
    return code


def _require_mosquitto() -> None:
    """The demo runs its own broker: mosquitto must be installed (found as LocalBroker does)."""
    if not (shutil.which("mosquitto") or os.access("/usr/sbin/mosquitto", os.X_OK)):
        raise DemoError("mosquitto is not installed: run `make setup` (scripts/setup.sh)")


def _stop_on_signals(stack: ExitStack) -> threading.Event:
    """An event set by SIGINT or SIGTERM, so that either ends the demo the same clean way."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        stack.callback(signal.signal, sig, signal.signal(sig, lambda *_: stop.set()))
    return stop


def _state_dir(given: Path | None, stack: ExitStack) -> Path:
    """The given directory (kept afterwards; it must be new or empty: the demo builds a fresh
    network), or a temporary one removed when the demo stops."""
    if given is None:
        path = Path(tempfile.mkdtemp(prefix="hafen-demo-"))
        stack.callback(shutil.rmtree, path, ignore_errors=True)
        return path
    if given.exists() and any(given.iterdir()):
        raise DemoError(f"{given} is not empty: give a new --state-dir (the demo starts afresh)")
    given.mkdir(parents=True, exist_ok=True)
    return given.resolve()


def _listen(host: str, port: int) -> socket.socket:
    """Bind the API's port now, so that a port in use is a clear error before anything runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {host}:{port} ({exc.strerror}); try --port") from None
    return sock


def _log_to(path: Path, stack: ExitStack) -> None:
    """The hub's log goes to a file (warnings also to the terminal, which shows the logins)."""
    root = logging.getLogger()
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(logging.WARNING)
    root.setLevel(os.environ.get("HAFEN_LOG_LEVEL", "INFO"))
    root.addHandler(to_file)
    root.addHandler(to_terminal)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    def detach() -> None:
        for handler in (to_file, to_terminal):
            root.removeHandler(handler)
            handler.close()

    stack.callback(detach)


class DemoHub:
    """The hub's services in this process: store, signing key, access-list publisher, one
    ingest worker (a thread) and the API (uvicorn in a thread)."""

    def __init__(self, state: Path, broker_port: int) -> None:
        from hub.access_lists import AclPublisher
        from hub.ingest.worker import IngestWorker
        from hub.keys import generate_key
        from hub.mqtt import HubClient

        self.engine = db.connect(f"sqlite:///{state / 'hub.db'}")
        self.key = generate_key(state / "hub-signing.pem")
        self.card_key = os.urandom(16)
        _write_secret(state / "card.key", self.card_key.hex() + "\n")
        self.client = HubClient("127.0.0.1", broker_port, client_id="hafen-demo-hub")
        self.publisher = AclPublisher(
            self.engine, self.key, self.client.publish, self.client.publish_many
        )
        self.worker = IngestWorker(
            self.engine,
            "127.0.0.1",
            broker_port,
            self.key,
            name="demo",
            on_state=self._catch_up,
            card_key=self.card_key,  # the doors seal their states with keys derived from it
        )
        self.server: HubServer | None = None
        self._thread: threading.Thread | None = None
        self._ingesting = False

    def _catch_up(self, site: str, device: str, state: DeviceState) -> None:
        """A device reports an older list than the newest: send it a snapshot of its own."""
        self.publisher.catch_up(site, device, state.acl_version)

    def start(self, listener: socket.socket) -> None:
        """Connect to the broker, start ingest, then serve the API on ``listener``."""
        from hub.app import create_app
        from hub.server import hub_server

        self.client.start()
        self.worker.start()
        self._ingesting = True
        app = create_app(self.engine, self.card_key, self.publisher)
        self.server = server = hub_server(app, log_level="warning", access_log=False)
        self._thread = thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="api", daemon=True
        )
        thread.start()
        if not _wait(lambda: server.started or not thread.is_alive(), 20):
            raise DemoError("the hub's API did not start within 20 s")
        if not server.started:
            raise DemoError("the hub's API failed to start (see the messages above)")

    @property
    def serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving, then ingest, then the broker connection; the store last."""
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        if self._ingesting:
            self.worker.stop()
        self.publisher.close()
        self.client.stop()
        self.engine.dispose()


class SiteProcesses:
    """One ``python -m sim.demo_network`` process per site, each logging to its own file."""

    def __init__(
        self, hub: DemoHub, network: Network, state: Path, speed: float, broker_port: int
    ) -> None:
        from hafen.signing import public_key_text

        self.specs: list[tuple[str, Path, Path]] = []
        for site in network.sites:
            site_dir = state / "sites" / site.id
            site_dir.mkdir(parents=True)
            config = demo_network.edge_config(
                site, site_dir, hub.card_key, broker_port, public_key_text(hub.key)
            )
            spec = demo_network.write_site_spec(site, site_dir, config, speed)
            self.specs.append((site.id, spec, site_dir / "edge.log"))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for site, spec, log_path in self.specs:
            with open(log_path, "ab") as out:
                self.processes[site] = subprocess.Popen(
                    [sys.executable, "-m", "sim.demo_network", str(spec)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )

    def exited(self) -> list[tuple[str, int, Path]]:
        """The sites whose process has ended: (site, exit code, its log)."""
        logs = {site: path for site, _, path in self.specs}
        return [
            (site, code, logs[site])
            for site, process in self.processes.items()
            if (code := process.poll()) is not None
        ]

    def stop(self) -> None:
        """SIGTERM to every site (each stops its door agent cleanly), then wait for all;
        whichever has not stopped within the time allowed is killed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for site, process in self.processes.items():
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("site %s did not stop in %.0f s: killed", site, STOP_TIMEOUT)
                process.kill()
                process.wait()


def _watch(stop: threading.Event, hub: DemoHub, sites: SiteProcesses, count: int) -> int:
    """Wait for a stop signal, showing now and then that the network works; a site process
    or the API that ends by itself ends the demo (exit 1)."""
    next_status = STATUS_EVERY
    waited = 0.0
    while not stop.wait(1.0):
        waited += 1.0
        if dead := sites.exited():
            for site, code, log_path in dead:
                print(f"site {site} stopped by itself (exit {code}); its log:", file=sys.stderr)
                print(_tail(log_path), file=sys.stderr)
            return 1
        if not hub.serving:
            print("the hub's API stopped by itself; see hub.log", file=sys.stderr)
            return 1
        if waited >= next_status:
            next_status += STATUS_EVERY
            print(_status(hub, count), flush=True)
    print("stopping the demo ...", flush=True)
    return 0


def _status(hub: DemoHub, count: int) -> str:
    """One line: doors online and the door events the hub has stored."""
    e, s = db.events.c, db.device_states.c
    with hub.engine.connect() as conn:
        online = conn.scalar(select(func.count()).where(s.online.is_(True)))
        events = conn.scalar(select(func.count()).select_from(db.events))
        allowed = conn.scalar(
            select(func.count()).where(
                e.kind == "door.decision", e.data["allowed"].as_boolean().is_(True)
            )
        )
    return f"doors online {online}/{count}; door events stored: {events} ({allowed} taps let in)"


def _banner(
    options: DemoOptions, network: Network, logins: Logins, state: Path, booked: list[str]
) -> None:
    """Where to look and how to sign in."""
    base = f"http://{_url_host(options.host)}:{options.port}"
    operator_site = next(s for s in network.sites if s.id == logins.operator_site)
    kept = "kept" if options.state_dir else "removed when the demo stops"
    lines = [
        f"hafen demo: {len(network.sites)} sites of {options.people} members each, "
        f"their days passing {options.speed:g} times faster",
        "  " + ", ".join(f"{s.id} {s.name}" for s in network.sites),
        "",
        f"  dashboard:  {base}/ui/",
        f"  API docs:   {base}/docs",
        f"  sign in as {logins.admin[0]} with password {logins.admin[1]} (network admin)",
        f"  sign in as {logins.operator[0]} with password {logins.operator[1]} "
        f"(site operator of {operator_site.id}, {operator_site.name})",
        *_people_lines(logins, booked),
        "",
        f"  state: {state} ({kept}); logs: hub.log, sites/*/edge.log",
        "Stop with Ctrl-C.",
    ]
    print("\n".join(lines), flush=True)


def _people_lines(logins: Logins, booked: list[str]) -> list[str]:
    """How the demo's member and employer sign in (same page), and what they booked."""
    lines = []
    if logins.member is not None:
        name, password, member = logins.member
        lines.append(f"  sign in as {name} with password {password} (member {member}, who books)")
    if logins.employer is not None:
        name, password, company = logins.employer
        lines.append(f"  sign in as {name} with password {password} (company admin of {company})")
    if booked:
        lines.append("  booked: " + "; ".join(booked))
    return lines


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _wait(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
