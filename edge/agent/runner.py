"""The door agent as a service: run it until SIGTERM or SIGINT, telling systemd how it is.

The store is checked before the agent opens it, and a damaged one is recovered
(edge.agent.recovery). When the running agent finds its store damaged, the door decides by its
fail mode while this stops the agent in order, leaves word for the next start, and exits with
``EXIT_RECOVER``: the service manager starts it again (systemd/hafen-edge.service restarts it
always, without a start limit) and the start recovers. A restart rather than a swap inside the
running process: every thread and connection of the damaged run is gone for sure before its
file is moved (a connection left open would write a stale log into the fresh store), and
recovery has only one path, the start, which the tests exercise.

The agent claims its door first (edge.agent.door_claim): while a technician's self-test drives
the pins and the reader, an agent started meanwhile (systemd restarting it) exits with
``EXIT_IN_USE`` and is started again after the unit's RestartSec, instead of fighting the
self-test over the strike.

With ``[updates]`` the agent also runs the updater (edge.updater): it hands the door to a new
version through edge.agent.handover, and is that new version when started with
``take_over`` (the socket of the hand-over).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import sdnotify

from edge.agent.agent import EdgeAgent
from edge.agent.config import EdgeConfig
from edge.agent.door_claim import DoorClaim, DoorInUse
from edge.agent.recovery import keep_events, mark_damaged, open_store
from hafen.protocol import EventPayload

if TYPE_CHECKING:
    from edge.updater.updater import Updater

#: Exit status of an agent that stopped to recover its store (EX_TEMPFAIL: start me again).
EXIT_RECOVER = 75
#: Exit status of an agent that did not start because another process drives its door
#: (EX_UNAVAILABLE; systemd starts it again after RestartSec).
EXIT_IN_USE = 69
#: Who the agent says it is to a process its claim on the door refuses.
AGENT = "the door agent (hafen edge run)"

log = logging.getLogger("edge")


class Companion(Protocol):
    """Something started after the agent and stopped before it (a simulated world, say)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class DoorService:
    """The door as one unit to take and to let go of: its claim, store, agent and world."""

    def __init__(
        self, cfg: EdgeConfig, world: Companion | None, notifier: sdnotify.SystemdNotifier
    ) -> None:
        self.cfg = cfg
        self.world = world
        self.notifier = notifier
        self.stop = threading.Event()
        self.exit_status = 0
        self.updates: Updater | None = None
        self.agent: EdgeAgent | None = None
        self._claim = DoorClaim(cfg.store.path, AGENT)
        self._damaged: list[str] = []
        self._open = threading.Event()

    def open(self) -> None:
        """Take the door (DoorInUse if another process drives it) and start deciding."""
        self._claim.take()
        try:
            store, recovery = open_store(self.cfg.store.path, self.cfg.store.synchronous)
        except BaseException:
            self._claim.release()
            raise
        self.agent = EdgeAgent(
            self.cfg,
            store,
            heartbeat=lambda: self.notifier.notify("WATCHDOG=1"),
            on_store_damaged=self._store_damaged,
            updates=self.updates,
        )
        self.agent.start()
        if self.world:
            self.world.start()
        self._open.set()
        log.info(
            "door agent running: site %s, device %s, reader %s, store %s%s",
            self.cfg.site.id,
            self.cfg.device.id,
            self.cfg.reader.path,
            self.cfg.store.path,
            " (recovered)" if recovery else "",
        )

    def close(self) -> None:
        """Stop deciding, leave the door in its fail state, let go of store and claim."""
        agent, self.agent = self.agent, None
        self._open.clear()
        if agent is None:
            return
        if self.world:
            self.world.stop()
        agent.stop()
        if kept := keep_events(self.cfg.store.path, agent.guard.unwritten()):
            log.warning("%d events the store could not take are kept for the next start", kept)
        agent.store.close()
        self._claim.release()
        log.info("door agent stopped; door left %s", self.cfg.door.fail_mode)

    def report(self, payload: EventPayload) -> None:
        """Record an event through the agent, waiting for the door to be open (the
        updater's reports: a hand-over lets go of it for a moment)."""
        if not self._open.wait(60):
            raise TimeoutError("the door was not open to record the update's report")
        agent = self.agent
        if agent is None or not agent.record_and_wait(payload):
            raise TimeoutError("the door's loop did not record the update's report")

    def _store_damaged(self, reason: str) -> None:
        self._damaged.append(reason)
        mark_damaged(self.cfg.store.path, reason)
        self.exit_status = EXIT_RECOVER
        self.stop.set()


def run_agent(
    cfg: EdgeConfig,
    world: Companion | None = None,
    take_over: int | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Run the door agent (and a simulated world around it) until SIGTERM or SIGINT.

    ``take_over``: the socket (file descriptor) of a hand-over whose child this is; ``argv``:
    this process's command line without the program, which a hand-over gives the new
    version. Raises SystemExit(EXIT_RECOVER) when it stopped because the store is damaged,
    SystemExit(EXIT_IN_USE) when another process (a self-test) drives the door, and
    SystemExit(EXIT_SWITCHED_BACK) when this new version failed its gate.
    """
    notifier = sdnotify.SystemdNotifier()
    service = DoorService(cfg, world, notifier)
    signal.signal(signal.SIGTERM, lambda *_: service.stop.set())
    signal.signal(signal.SIGINT, lambda *_: service.stop.set())
    handed_over = threading.Event()
    if cfg.updates is not None:
        from edge.agent.updates import build_updater

        service.updates = build_updater(service, list(argv or sys.argv[1:]), handed_over)
    if take_over is None:
        try:
            service.open()
        except DoorInUse as exc:
            log.error("not starting: %s", exc)
            if cfg.updates is not None:  # not a crash of a new version: the launcher forgives
                from edge.updater.job import JOB_FILE, JobFile

                JobFile(cfg.store.path.parent / JOB_FILE).forgive_starts(1)
            raise SystemExit(EXIT_IN_USE) from None
        gate_passed = False
    else:
        from edge.agent.take_over import take_the_door

        take_the_door(socket.socket(fileno=take_over), service)
        gate_passed = True
    if service.updates is not None:
        service.updates.start(gate_passed=gate_passed)
    notifier.notify("READY=1")
    service.stop.wait()
    if handed_over.is_set():
        log.info("the door is handed over to the new version; this one ends")
        return
    notifier.notify("STOPPING=1")
    if service.updates is not None:
        service.updates.stop()
    service.close()
    if service._damaged:
        log.error("stopped to recover the damaged store (%s): start me again", service._damaged[0])
    if service.exit_status:
        raise SystemExit(service.exit_status)
