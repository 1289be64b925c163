"""Doing something at a bounded rate, whatever the network makes happen how often.

A door must not answer each forged message with a write to its SD card, a state for the hub or
a log line: what a third party on the broker can make happen every millisecond is counted and
reported at a pace the door chooses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Says yes at most once per interval: at once the first time, then only after the interval.

    With ``longest`` the interval doubles each time it says yes, up to ``longest``, until
    ``reset`` (asking again and again while a problem lasts, less and less often).
    Thread-safe.
    """

    def __init__(
        self,
        every: float,
        longest: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first = every
        self.longest = every if longest is None else max(every, longest)
        self._every = every
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """Whether it may happen now; if so, it is counted as having happened."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self._every:
                return False
            if self._last is not None:
                self._every = min(self._every * 2, self.longest)
            self._last = now
            return True

    def wait(self) -> float:
        """Seconds until it may happen again (0: now)."""
        with self._lock:
            if self._last is None:
                return 0.0
            return max(0.0, self._last + self._every - self._clock())

    def reset(self) -> None:
        """The next time is at once again, and the interval back to its first length."""
        with self._lock:
            self._last = None
            self._every = self.first
