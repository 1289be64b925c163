"""A door's MQTT session taken over by another connection with its client id: counted,
reported as a security fault, at a bounded rate.

Until devices have identities of their own on the broker, anyone on it can connect with a
door's client id. The broker then hands the session over: with a clean start the door's
subscriptions and the commands queued for it are gone, and the squatter can do it again each
time the door reconnects. The door cannot stop that; it can make it visible: ``takeovers`` in
its state, an ``mqtt`` fault on its board while it goes on, and a ``device.fault`` event, the
first at once and then at most one per few minutes (a squatter may take over every second).

The door knows it two ways. Newer brokers tell the old connection (MQTT 5 DISCONNECT, reason
142 "session taken over"). mosquitto 2.0.11 (Debian 12) just closes it, and with a will delay
sends no will either; what the door sees then is its connection closed by the broker and, on
reconnecting at once, its session gone: only a clean start by another connection with its
client id does that while the broker stays up (or a broker that restarted and lost its saved
sessions, which the fault text admits).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.agent.faults import FaultBoard
from edge.agent.pacing import Pacer
from hafen.protocol import DeviceFault, EventPayload

log = logging.getLogger(__name__)

#: MQTT 5 DISCONNECT reason code: another connection took over this client id's session.
SESSION_TAKEN_OVER = 142
#: The fault board's component, and its text while take-overs go on.
COMPONENT = "mqtt"
TAKEN_OVER = "session taken over by another connection with this door's client id"
#: What the door can tell on a broker that does not say so (mosquitto 2.0).
LOST = (
    "session gone after the broker closed the connection: taken over with a clean start by"
    " another connection with this door's client id, or lost by the broker"
)
#: The fault clears after this many seconds without another take-over.
QUIET_SECONDS = 600.0
#: At most one ``device.fault`` event per this many seconds while take-overs go on.
REPORT_EVERY = 300.0


class TakeoverWatch:
    """Counts take-overs; raises the ``mqtt`` fault and clears it after a quiet period.

    ``record`` queues an event for the door's outbox and must be safe to call from paho's
    thread (the agent hands it to its loop).
    """

    def __init__(
        self,
        faults: FaultBoard,
        record: Callable[[EventPayload], None],
        quiet_seconds: float = QUIET_SECONDS,
        report_every: float = REPORT_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._faults = faults
        self._record = record
        self._quiet_seconds = quiet_seconds
        self._report = Pacer(report_every, clock=clock)
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._generation = 0
        self._stopped = False
        #: Take-overs since the agent started.
        self.count = 0

    def taken_over(self, fault: str = TAKEN_OVER) -> None:
        """Another connection took this door's session (``fault`` says how the door knows)."""
        with self._lock:
            self.count += 1
            count = self.count
            self._restart_quiet_timer()
        log.warning("%s (%d times since start): is someone impersonating the door?", fault, count)
        self._faults.set(COMPONENT, fault)
        if self._report.ready():
            self._record(DeviceFault(component=COMPONENT, fault=fault))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()

    def _restart_quiet_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._stopped:
            return
        self._generation += 1
        self._timer = threading.Timer(self._quiet_seconds, self._quiet, (self._generation,))
        self._timer.daemon = True
        self._timer.start()

    def _quiet(self, generation: int) -> None:
        """No take-over for a while: the fault clears (and the clearing is recorded)."""
        with self._lock:
            if self._stopped or generation != self._generation:
                return  # stopped, or another take-over came since this timer started
            self._timer = None
        if self._faults.set(COMPONENT, None):
            self._record(DeviceFault(component=COMPONENT, fault=None))
        self._report.reset()
