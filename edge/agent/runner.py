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
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Protocol

import sdnotify

from edge.agent.agent import EdgeAgent
from edge.agent.config import EdgeConfig
from edge.agent.door_claim import DoorClaim, DoorInUse
from edge.agent.recovery import keep_events, mark_damaged, open_store

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


def run_agent(cfg: EdgeConfig, world: Companion | None = None) -> None:
    """Run the door agent (and a simulated world around it) until SIGTERM or SIGINT.

    Raises SystemExit(EXIT_RECOVER) when it stopped because the store is damaged, and
    SystemExit(EXIT_IN_USE) when another process (a self-test) drives the door.
    """
    claim = DoorClaim(cfg.store.path, AGENT)
    try:
        claim.take()
    except DoorInUse as exc:
        log.error("not starting: %s", exc)
        raise SystemExit(EXIT_IN_USE) from None
    try:
        _run(cfg, world)
    finally:
        claim.release()


def _run(cfg: EdgeConfig, world: Companion | None) -> None:
    notifier = sdnotify.SystemdNotifier()
    store, recovery = open_store(cfg.store.path, cfg.store.synchronous)
    stop = threading.Event()
    damaged: list[str] = []

    def store_damaged(reason: str) -> None:
        damaged.append(reason)
        mark_damaged(cfg.store.path, reason)
        stop.set()

    agent = EdgeAgent(
        cfg,
        store,
        heartbeat=lambda: notifier.notify("WATCHDOG=1"),
        on_store_damaged=store_damaged,
    )
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    if world:
        world.start()
    notifier.notify("READY=1")
    log.info(
        "door agent running: site %s, device %s, reader %s, store %s%s",
        cfg.site.id,
        cfg.device.id,
        cfg.reader.path,
        cfg.store.path,
        " (recovered)" if recovery else "",
    )
    stop.wait()
    notifier.notify("STOPPING=1")
    if world:
        world.stop()
    agent.stop()
    if kept := keep_events(cfg.store.path, agent.guard.unwritten()):
        log.warning("%d events the store could not take are kept for the next start", kept)
    store.close()
    log.info("door agent stopped; door left %s", cfg.door.fail_mode)
    if damaged:
        log.error("stopped to recover the damaged store (%s): start me again", damaged[0])
        raise SystemExit(EXIT_RECOVER)
