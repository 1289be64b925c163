"""What waits for the access-list updater, bounded whatever arrives: the newest list of each
source, and the refused ones as a count.

The broker can deliver lists faster than a door applies them (a burst of changes while a
snapshot is written), and anyone on the broker can send thousands of forged ones. An unbounded
queue held each of them in memory until it was refused (thousands of forged 64 kB lists took an
agent to 227 MB). Only the newest list of each source matters: each is a whole version (a
snapshot) or the newest delta, and a delta whose base the door missed is refused and answered
with a snapshot (the door's state then shows it is behind). So the mailbox holds at most one
list per source, and a refusal is a number, not an event written to the SD card each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from edge.agent.pacing import Pacer


class Source(StrEnum):
    """Where a list came from, in the order pending lists are applied."""

    #: ``cmd/acl_snapshot``: the hub's answer to a door that is behind; applied first, so that
    #: a retained delta based on it applies after it.
    SNAPSHOT = "snapshot"
    #: The site's list topic: the retained list on connecting, and each one published live.
    RETAINED = "retained"


@dataclass
class Pending:
    """A list waiting to be verified and applied."""

    payload: bytes
    source: Source
    #: Attempts so far that the store could not write (disk full, I/O error).
    attempts: int = 0
    #: When (monotonic) it may be tried again.
    due: float = 0.0


class AclMailbox:
    """At most one pending list per source: a newer arrival replaces the one waiting.

    ``dropped`` counts the lists replaced before they were handled. ``take`` hands out the
    pending snapshot before the pending retained list, and a list kept for another attempt
    (``retry``) only when its time has come. Thread-safe: paho's thread puts, the updater takes.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots: dict[Source, Pending] = {}
        self._cond = threading.Condition()
        self._clock = clock
        self._woken = False
        self.closed = False
        self.dropped = 0

    def put(self, payload: bytes, source: Source) -> None:
        """A list arrived; it replaces any list from the same source that still waits."""
        with self._cond:
            if source in self._slots:
                self.dropped += 1
            self._slots[source] = Pending(payload, source)
            self._cond.notify()

    def retry(self, pending: Pending, delay: float) -> bool:
        """Keep a list the store could not write for another attempt in ``delay`` seconds,
        unless a newer list from its source arrived meanwhile (then it is dropped: the newer
        one goes first). Returns whether it was kept."""
        with self._cond:
            if pending.source in self._slots or self.closed:
                self.dropped += 1
                return False
            pending.attempts += 1
            pending.due = self._clock() + delay
            self._slots[pending.source] = pending
            return True

    def pending(self) -> dict[Source, Pending]:
        """What waits now (a copy)."""
        with self._cond:
            return dict(self._slots)

    def wake(self) -> None:
        """Make a waiting ``take`` return now (there is something else to do)."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def take(self, timeout: float) -> Pending | None:
        """The next list that is due, waiting at most ``timeout`` seconds for one; None if
        none came, on ``wake`` and once closed. A pending snapshot goes first: while it waits
        for its next attempt, so does the retained list behind it."""
        deadline = self._clock() + timeout
        with self._cond:
            while not self.closed and not self._woken:
                now = self._clock()
                head = next((self._slots[s] for s in Source if s in self._slots), None)
                if head is not None and head.due <= now:
                    del self._slots[head.source]
                    return head
                until = deadline if head is None else min(deadline, head.due)
                if until <= now:
                    return None
                self._cond.wait(until - now)
            self._woken = False
            return None


@dataclass(frozen=True)
class Refusals:
    """Refused lists since the last report: how many, and the last one's reason and version."""

    count: int
    reason: str
    version: int | None


class RefusalTally:
    """Counts refused lists in memory and says when to report them: the first at once, then
    at most one report per ``every`` seconds, with the count since the last report.

    Forged lists cost the door no write each, and the hub one row per few minutes at most.
    Thread-safe (an oversized list is refused in paho's thread).
    """

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._pacer = Pacer(every, clock=clock)
        self._lock = threading.Lock()
        self._count = 0
        self._last: tuple[str, int | None] = ("", None)
        #: Every refusal since the door started.
        self.total = 0

    def add(self, reason: str, version: int | None) -> None:
        with self._lock:
            self._count += 1
            self.total += 1
            self._last = (reason, version)

    def due(self) -> Refusals | None:
        """What to report now, if anything may be reported now (counted as reported: give it
        back with ``unreported`` if it could not be written)."""
        with self._lock:
            if not self._count or not self._pacer.ready():
                return None
            report = Refusals(self._count, *self._last)
            self._count = 0
            return report

    def unreported(self, report: Refusals) -> None:
        """A report that could not be written: its refusals count towards the next one."""
        with self._lock:
            self._count += report.count

    def wait(self) -> float | None:
        """Seconds until a report is due; None if nothing waits to be reported."""
        with self._lock:
            return self._pacer.wait() if self._count else None
