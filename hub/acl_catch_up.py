"""Catch-up snapshots: a device whose state shows an older list than its site's newest gets the
whole list on its own ``cmd/acl_snapshot``, within bounds.

States arrive from the broker, where anyone connected may publish one (issue 13): a flood of
states, for made-up doors or forged for real ones, must never make the hub seal and publish
snapshot after snapshot. So a snapshot goes only to a device whose state the store holds
(ingest keeps only proven states), at most once per device every ``device_seconds``, within a
token bucket per site and one for the network; the second looks waiting on a timer are
bounded too. A device a limit turned away is not forgotten: hub.list_watch keeps sending its
site's newest list, at its own bounded rate, until the device's own state shows it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from hub import db
from hub.rate_limits import BucketsByKey, Clock, Spacing, TokenBucket

if TYPE_CHECKING:
    from hub.access_lists import AclPublisher

log = logging.getLogger(__name__)

#: A device's state at connect may predate its retained list: look again after this long.
CATCH_UP_DELAY = 3.0
#: A look that its timer wakes this much early still counts as on time.
TIMER_SLACK = 0.05
#: Refusals by the limits are logged at most this often (a flood must not flood the log).
LOG_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class CatchUpLimits:
    """How many catch-up snapshots a hub process sends at most."""

    #: At most one snapshot per device this often.
    device_seconds: float = 30.0
    #: Per site: this many at once (doors restarting together), then one per ``site_seconds``.
    site_burst: int = 4
    site_seconds: float = 15.0
    #: The whole network: this many at once, then ``network_per_second``.
    network_burst: int = 20
    network_per_second: float = 2.0
    #: Second looks waiting on a timer, in all and per site.
    max_pending: int = 256
    max_pending_per_site: int = 16

    def __post_init__(self) -> None:
        numbers = {
            "device_seconds": self.device_seconds,
            "site_burst": self.site_burst,
            "site_seconds": self.site_seconds,
            "network_burst": self.network_burst,
            "network_per_second": self.network_per_second,
            "max_pending": self.max_pending,
            "max_pending_per_site": self.max_pending_per_site,
        }
        for name, value in numbers.items():
            if not value > 0:
                raise ValueError(f"catch-up limit {name} must be above 0, not {value}")


class CatchUps:
    """Second looks at devices that report an older list, each ending in at most one snapshot."""

    def __init__(
        self,
        publisher: AclPublisher,
        limits: CatchUpLimits = CatchUpLimits(),
        clock: Clock = time.monotonic,
    ) -> None:
        self.publisher = publisher
        self.limits = limits
        self._device = Spacing(limits.device_seconds, clock=clock)
        self._site = BucketsByKey(1 / limits.site_seconds, limits.site_burst, clock=clock)
        self._network = TokenBucket(limits.network_per_second, limits.network_burst, clock)
        self._timers: dict[tuple[str, str], threading.Timer] = {}
        self._lock = threading.Lock()
        self._log_spacing = Spacing(LOG_EVERY_SECONDS, clock=clock)
        #: Looks and snapshots the limits turned away, by limit, since the start.
        self.refused: Counter[str] = Counter()
        #: Snapshots sent.
        self.sent = 0

    def request(
        self, site: str, device: str, device_version: int | None, delay: float = CATCH_UP_DELAY
    ) -> bool:
        """A device reported ``device_version``: look at it again after ``delay`` (later if it
        had a snapshot lately) and send it one if it still lags. One look per device is pending
        at a time. Returns whether a look is due."""
        if self.publisher.newest(site) <= (device_version or 0):
            return False
        key = (site, device)
        wait = max(delay, self._device.wait(key))
        with self._lock:
            pending = self._timers.get(key)
            if pending is not None and pending.is_alive():
                return True
            if wait > 0 and not self._room_for(site):
                return False
            timer = threading.Timer(wait, self._look, key) if wait > 0 else None
            if timer is not None:
                timer.daemon = True
                self._timers[key] = timer
        if timer is None:
            self._look(site, device)
        else:
            timer.start()
        return True

    def _room_for(self, site: str) -> bool:
        """Whether another look may wait on a timer (called under the lock)."""
        self._timers = {k: t for k, t in self._timers.items() if t.is_alive()}
        if len(self._timers) >= self.limits.max_pending:
            self._refuse("pending", "looks pending in all")
            return False
        if sum(1 for s, _ in self._timers if s == site) >= self.limits.max_pending_per_site:
            self._refuse("pending", f"looks pending at site {site}")
            return False
        return True

    def close(self) -> None:
        """Cancel the looks still pending (the store and broker are going away)."""
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    def _look(self, site: str, device: str) -> None:
        try:
            self._send_if_behind(site, device)
        except Exception:  # a timer thread: log; the device's next state schedules another
            log.exception("could not look at %s.%s again", site, device)
        finally:
            with self._lock:
                timer = self._timers.get((site, device))
                if timer is threading.current_thread():
                    del self._timers[(site, device)]

    def _send_if_behind(self, site: str, device: str) -> None:
        s = db.device_states.c
        with self.publisher.engine.connect() as conn:
            row = conn.execute(
                select(s.acl_version, s.session).where(s.site == site, s.device == device)
            ).one_or_none()
        if row is None or row.session is None:
            # No state of its own in the store (a row may count only refused, forged ones):
            # an unknown device, or a forged state.
            return
        version = row.acl_version
        if self.publisher.newest(site) <= (version or 0):
            return
        key = (site, device)
        if self._device.wait(key) > TIMER_SLACK:
            self._refuse("device", f"device {site}.{device}")
            return
        if not self._site.take(site):
            self._refuse("site", f"site {site}")
            return
        if not self._network.take():
            self._refuse("network", "the network")
            return
        self._device.mark(key)
        if self.publisher.send_snapshot(site, device):
            self.sent += 1
            log.info("sent %s.%s a snapshot: it reported version %s", site, device, version)

    def _refuse(self, limit: str, detail: str) -> None:
        self.refused[limit] += 1
        if self._log_spacing.wait("log") == 0:
            self._log_spacing.mark("log")
            log.warning(
                "catch-up snapshots held back by their limit (%s); refused so far: %s",
                detail,
                dict(self.refused),
            )
