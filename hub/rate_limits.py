"""Rate limits for what the hub sends on its own initiative (catch-up snapshots, re-sent
access lists) and for what doors download (releases): a token bucket, buckets per key, a
minimum spacing per key, and slots held at once per key.

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


class Slots:
    """At most ``per_key`` held at once per key (a door's downloads) and ``total`` in all.

    Only keys that hold a slot are remembered, so memory is bounded by ``total``."""

    def __init__(self, per_key: int, total: int) -> None:
        if per_key < 1 or total < per_key:
            raise ValueError("slots need at least 1 per key and a total of at least as many")
        self.per_key, self.total = per_key, total
        self._held: dict[Hashable, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> bool:
        """Take a slot for ``key`` if one is free: whether the caller may go ahead (it then
        must ``give_back`` the slot, whatever happens)."""
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self.per_key or self._count >= self.total:
                return False
            self._held[key] = held + 1
            self._count += 1
            return True

    def give_back(self, key: Hashable) -> None:
        with self._lock:
            held = self._held.get(key, 0)
            if held <= 0:
                raise RuntimeError(f"no slot held for {key!r}")
            if held == 1:
                del self._held[key]
            else:
                self._held[key] = held - 1
            self._count -= 1

    def held(self, key: Hashable | None = None) -> int:
        """Slots held by ``key``, or by all (None)."""
        with self._lock:
            return self._count if key is None else self._held.get(key, 0)
