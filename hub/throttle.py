"""Sign-in throttling: slow down password guessing before it costs an argon2 hash.

Sign-in attempts are counted in a sliding window under two keys: the name and the client
together (one person mistyping, or one attacker on one account) and the client alone (one
address spraying many names). When a key is over its limit, attempts are refused until its
oldest failure ages out, without checking the password: a refusal costs nothing, so the hub
cannot be worn down by sign-in requests. There is no limit per name alone: it would let
anyone lock the network's admin out; argon2 and long passwords make slow guessing from many
addresses hopeless anyway.

An attempt is counted as a failure when it starts and forgiven when it succeeds, so parallel
attempts cannot slip past the limit. The counts live in the process, so each hub replica
counts for itself. Behind a reverse proxy the client is the proxy unless the server is told to
trust its forwarded headers (``hafen hub serve --forwarded-allow-ips``).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from hub.auth import sign_in


@dataclass(frozen=True)
class Limits:
    """How many failures each key may have within ``window_seconds``."""

    per_name_and_client: int = 5
    per_client: int = 30
    window_seconds: float = 15 * 60.0


class SignInThrottle:
    """Counts sign-in attempts that did not succeed, and refuses new ones over the limits."""

    #: Keys kept at most; the least recently failed are forgotten first, so memory is bounded
    #: however many names and addresses an attacker invents.
    MAX_KEYS = 20_000

    def __init__(
        self, limits: Limits = Limits(), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._failures: OrderedDict[tuple[str, ...], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def attempt(self, name: str, client: str) -> int:
        """Start an attempt: 0 when it may go ahead (it counts as failed until
        :meth:`succeeded`), else the whole seconds until one may."""
        now = self._clock()
        with self._lock:
            wait = max(self._wait(key, limit, now) for key, limit in self._keys(name, client))
            if wait:
                return wait
            for key, limit in self._keys(name, client):
                times = self._failures.pop(key, None) or deque(maxlen=limit)
                times.append(now)
                self._failures[key] = times
            while len(self._failures) > self.MAX_KEYS:
                self._failures.popitem(last=False)
        return 0

    def succeeded(self, name: str, client: str) -> None:
        """The right password: forget this person's mistakes and this attempt's count."""
        with self._lock:
            self._failures.pop(("name+client", name, client), None)
            times = self._failures.get(("client", client))
            if times:
                times.pop()

    def _keys(self, name: str, client: str) -> list[tuple[tuple[str, ...], int]]:
        client = _network_of(client)
        return [
            (("name+client", name, client), self.limits.per_name_and_client),
            (("client", client), self.limits.per_client),
        ]

    def _wait(self, key: tuple[str, ...], limit: int, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        window = self.limits.window_seconds
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        if len(times) < limit:
            return 0
        return max(1, math.ceil(times[0] + window - now))


def _network_of(client: str) -> str:
    """An IPv6 client is counted by its /64: one subscriber holds all of it, so counting each
    address would let them try without end."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Throttled(Exception):
    """Too many failed sign-ins: try again in ``seconds``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(refusal(seconds))
        self.seconds = seconds


def throttled_sign_in(
    throttle: SignInThrottle,
    engine: Engine,
    name: str,
    password: str,
    client: str,
    lifetime: timedelta,
) -> str:
    """:func:`hub.auth.sign_in`, refused with :class:`Throttled` while the limits hold."""
    wait = throttle.attempt(name, client)
    if wait:
        raise Throttled(wait)
    token = sign_in(engine, name, password, lifetime)  # AuthError: the attempt stays counted
    throttle.succeeded(name, client)
    return token


def refusal(seconds: int) -> str:
    """The words for a refused attempt, in minutes when that is the sensible unit."""
    if seconds < 90:
        return f"Too many failed sign-ins. Try again in {seconds} seconds."
    return f"Too many failed sign-ins. Try again in {math.ceil(seconds / 60)} minutes."
