"""The rollout driver of ``hafen hub serve``: every few seconds, one tick of every rollout
(hub.services.rollout_driver.advance): deadlines, limits, stages, orders and re-sends.

Like the booking sweeper (hub.sweeper), one runs in each hub process; several may tick one
store, each door is ordered once (``advance`` claims before it sends). It runs only where the
hub has a broker: orders go out on the access-list publisher's connection.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from hub.access_lists import AclPublisher
from hub.services.rollout_driver import advance, command_sender

log = logging.getLogger(__name__)

#: How often the driver ticks, in seconds.
TICK_SECONDS = 5.0
#: How long a stopping hub waits for the tick under way.
STOP_WAIT = 5.0


class RolloutRunner:
    """Ticks the rollouts in a thread of its own (see the module)."""

    def __init__(
        self, engine: Engine, publisher: AclPublisher, every: float = TICK_SECONDS
    ) -> None:
        self.engine, self.every = engine, every
        self.send = command_sender(publisher)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsent = ""  # the last reason the broker took no order, logged once

    def start(self) -> RolloutRunner:
        self._thread = threading.Thread(target=self._run, name="rollout-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                tick = advance(self.engine, self.send)
            except Exception:  # the store is away, a bug: log it, the next tick tries again
                log.exception("driving the rollouts failed")
                continue
            if tick.unsent != self._unsent:
                if tick.unsent:
                    log.warning("rollout orders wait: %s", tick.unsent)
                else:
                    log.info("the broker takes rollout orders again")
                self._unsent = tick.unsent
            for rollout, stage in tick.begun:
                log.info("rollout %d: stage %d begins", rollout, stage)
            for rollout in tick.paused:
                log.warning("rollout %d paused by itself: its failures passed its limits", rollout)
            for rollout in tick.done:
                log.info("rollout %d done", rollout)
            if tick.ordered or tick.expired:
                log.info(
                    "rollouts: %d devices ordered, %d re-sent, %d failed past their deadline",
                    len(tick.ordered),
                    len(tick.resent),
                    tick.expired,
                )
