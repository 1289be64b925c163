"""The door agent as a service: run it until SIGTERM or SIGINT, telling systemd how it is."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Protocol

import sdnotify

from edge.agent.agent import EdgeAgent
from edge.agent.config import EdgeConfig
from edge.agent.store import EdgeStore


class Companion(Protocol):
    """Something started after the agent and stopped before it (a simulated world, say)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def run_agent(cfg: EdgeConfig, world: Companion | None = None) -> None:
    """Run the door agent (and a simulated world around it) until SIGTERM or SIGINT."""
    notifier = sdnotify.SystemdNotifier()
    store = EdgeStore(cfg.store.path, cfg.store.synchronous, auto_checkpoint=False)
    agent = EdgeAgent(cfg, store, heartbeat=lambda: notifier.notify("WATCHDOG=1"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    if world:
        world.start()
    notifier.notify("READY=1")
    logging.getLogger("edge").info(
        "door agent running: site %s, device %s, reader %s, store %s",
        cfg.site.id,
        cfg.device.id,
        cfg.reader.path,
        cfg.store.path,
    )
    stop.wait()
    notifier.notify("STOPPING=1")
    if world:
        world.stop()
    agent.stop()
    store.close()
    logging.getLogger("edge").info("door agent stopped; door left %s", cfg.door.fail_mode)
