"""The booking sweeper of ``hafen hub serve``: every minute, it releases bookings nobody
tapped in for, ends waiting-list entries that are over, and gives free desks to those still
waiting (hub.services.no_shows).

Like the mail sender (hub.mail), one runs in each hub process: several may sweep one store,
each booking is freed once (the pool's lock and the booking's claim, hub.services.freeing).
The first sweep comes one interval after the start, so a hub that was away gives ingest a
moment for the doors' backlog of taps first.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from hub.access_lists import AclPublisher
from hub.services.no_shows import sweep

log = logging.getLogger(__name__)

#: How often the sweeper looks, in seconds.
SWEEP_SECONDS = 60.0
#: How long a stopping hub waits for the sweep under way.
STOP_WAIT = 5.0


class BookingSweeper:
    """Sweeps bookings in a thread of its own (see the module)."""

    def __init__(
        self,
        engine: Engine,
        publisher: AclPublisher | None,
        sends_mail: bool,
        every: float = SWEEP_SECONDS,
    ) -> None:
        self.engine, self.publisher = engine, publisher
        self.sends_mail, self.every = sends_mail, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unheard = ""  # the last reason all releases were held, logged once

    def start(self) -> BookingSweeper:
        self._thread = threading.Thread(target=self._run, name="booking-sweeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                done = sweep(self.engine, self.publisher, sends_mail=self.sends_mail)
            except Exception:  # the store is away, a bug: log it, the next round tries again
                log.exception("sweeping bookings failed")
                continue
            if done.unheard != self._unheard:
                if done.unheard:
                    log.warning("%d releases held: %s", done.held, done.unheard)
                else:
                    log.info("ingest is listening again: releases go on")
                self._unheard = done.unheard
            if done.released or done.given:
                log.info(
                    "released %d bookings nobody tapped in for; %d desks to the waiting list",
                    len(done.released),
                    len(done.given),
                )
