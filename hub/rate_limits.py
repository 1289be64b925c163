"""Rate limits for what the hub sends on its own initiative (catch-up snapshots, re-sent
access lists): a token bucket, buckets per key and a minimum spacing per key.

Every limit remembers a bounded number of keys, the least recently used going first, so a
flood of invented names costs the hub a fixed amount of memory. Forgetting a key only ever
gives it a fresh budget; the network-wide bucket that callers put in front bounds the sum.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

Clock = Callable[[], float]


class TokenBucket:
    """Up to ``burst`` at once, then ``rate`` per second."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, count: int = 1) -> bool:
        """Take ``count`` tokens if there are as many: whether the caller may go ahead."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < count:
                return False
            self._tokens -= count
            return True


class BucketsByKey:
    """A :class:`TokenBucket` per key (a site, say), remembering at most ``max_keys``."""

    def __init__(
        self, rate: float, burst: int, max_keys: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> bool:
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = TokenBucket(self.rate, self.burst, self._clock)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return bucket.take()


class Spacing:
    """At most one go per key every ``seconds`` (a device's catch-up snapshots, say)."""

    def __init__(
        self, seconds: float, max_keys: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self.seconds, self.max_keys = seconds, max_keys
        self._clock = clock
        self._last: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: Hashable) -> float:
        """Seconds until ``key`` may go again (0: now)."""
        with self._lock:
            last = self._last.get(key)
        if last is None:
            return 0.0
        return max(0.0, last + self.seconds - self._clock())

    def mark(self, key: Hashable) -> None:
        """``key`` went now."""
        with self._lock:
            self._last.pop(key, None)
            self._last[key] = self._clock()
            while len(self._last) > self.max_keys:
                self._last.popitem(last=False)
