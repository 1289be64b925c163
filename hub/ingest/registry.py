"""The sites and devices the hub registered, as ingest believes them: only these may report.

Anyone on the broker can publish on any topic (issue 13): events and states for a door that
was never registered, or a site that does not exist, would otherwise reach the funders'
report and make the hub send snapshots to made-up doors. Ingest asks this registry before it
believes a message.

Each worker keeps the registry in memory (a few thousand rows) and reads it again on a miss,
at most once per ``reload_seconds``, so that a device registered a moment ago is believed
within seconds while a flood of invented names costs at most one query a second. It is also
read again after ``max_age_seconds`` even without a miss, so a removed device or a changed
capacity is noticed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select

from hub import db
from hub.rate_limits import Clock

#: Reading again on a miss happens at most this often.
RELOAD_SECONDS = 1.0
#: And at least this often.
MAX_AGE_SECONDS = 60.0


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
        #: Times the registry was read from the store.
        self.loads = 0

    def site(self, site: str) -> Site | None:
        """The registered site, or None."""
        self._fresh(lambda: site in self._sites)
        return self._sites.get(site)

    def has_device(self, site: str, device: str) -> bool:
        """Whether ``device`` is registered at ``site`` (and the site exists)."""
        key = (site, device)
        return self._fresh(lambda: key in self._devices and site in self._sites)

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
