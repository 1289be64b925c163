"""The sites and devices the hub registered, as ingest believes them: only these may report.

Anyone on the broker can publish on any topic (issue 13): events and states for a door that
was never registered, or a site that does not exist, would otherwise reach the funders'
report and make the hub send snapshots to made-up doors. Ingest asks this registry before it
believes a message.

Each worker keeps the registry in memory (a few thousand rows) and reads it again on a miss,
at most once per ``reload_seconds``, so that a device registered a moment ago is believed
within seconds while a flood of invented names costs at most a few queries a second. It is also
read again after ``max_age_seconds`` even without a miss, so a removed device or a changed
capacity is noticed. A device missed between two reads is looked up on its own, a few a
second at most (``POINT_LOOKUPS``): a door enrolled a moment after another's message made the
registry read the store would otherwise have its birth filed as a dead letter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select

from hub import db
from hub.rate_limits import Clock, TokenBucket

#: Reading again on a miss happens at most this often.
RELOAD_SECONDS = 1.0
#: And at least this often.
MAX_AGE_SECONDS = 60.0
#: Lookups of one missed device between two reads: per second, and at once.
POINT_LOOKUPS, POINT_BURST = 5.0, 10


@dataclass(frozen=True)
class Site:
    id: str
    capacity: int | None


class Registry:
    """Registered sites and devices, cached per worker."""

    def __init__(
        self,
        engine: Engine,
        reload_seconds: float = RELOAD_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self.engine = engine
        self.reload_seconds = reload_seconds
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._sites: dict[str, Site] = {}
        self._devices: frozenset[tuple[str, str]] = frozenset()
        self._loaded_at: float | None = None
        self._lookups = TokenBucket(POINT_LOOKUPS, POINT_BURST, clock)
        #: Times the registry was read from the store, whole or for one missed device.
        self.loads = 0
        self.lookups = 0

    def site(self, site: str) -> Site | None:
        """The registered site, or None."""
        self._fresh(lambda: site in self._sites)
        return self._sites.get(site)

    def has_device(self, site: str, device: str) -> bool:
        """Whether ``device`` is registered at ``site`` (and the site exists)."""
        key = (site, device)
        if self._fresh(lambda: key in self._devices and site in self._sites):
            return True
        if not self._lookups.take():
            return False
        d = db.devices.c
        self.lookups += 1
        with self.engine.connect() as conn:
            found = conn.scalar(select(d.id).where(d.site == site, d.id == device)) is not None
        if found:
            self._loaded_at = None  # registered since the last read: read it all next time
        return found

    def _fresh(self, known: Callable[[], bool]) -> bool:
        """Read the store if the cache is too old, or if ``known`` says no and the last read
        was long enough ago; then ask ``known`` again."""
        now = self._clock()
        loaded_at = self._loaded_at  # once: ``invalidate`` may clear it from another thread
        if loaded_at is None or now - loaded_at >= self.max_age_seconds:
            self._load(now)
            return known()
        if known():
            return True
        if now - loaded_at >= self.reload_seconds:
            self._load(now)
            return known()
        return False

    def invalidate(self) -> None:
        """Read the store again at the next question (a device was registered in this
        process, and should be believed at once)."""
        self._loaded_at = None

    def _load(self, now: float) -> None:
        s, d = db.sites.c, db.devices.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.id, s.capacity))
            sites = {row.id: Site(row.id, row.capacity) for row in rows}
            devices = frozenset((row.site, row.id) for row in conn.execute(select(d.site, d.id)))
        self._sites, self._devices = sites, devices
        self._loaded_at = now
        self.loads += 1
