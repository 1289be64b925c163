"""The live network overview: rebuilt in the background while someone watches, pushed on change.

One thread builds the whole network's picture (hub.services.overview.build_live: doors,
headcount, CO2, today's entries) a few times a second, only while at least one browser
listens, and bumps ``generation`` when it changed. Each listener gets it cut to what its user
may see: a hundred open phones cost the store the same few small queries as one. Streams sleep
until the generation moves (no polling), and get only the sites that changed since the picture
they last sent, encoded once for all the streams that see the same sites.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from hub.auth import Principal
from hub.services.overview import SiteLive, build_live, visible
from hub.services.scope import Scope

log = logging.getLogger(__name__)
#: How often the picture is rebuilt while someone watches, in seconds.
REFRESH = 0.25
#: A page load serves a picture this old as it is, one older than that and refreshes it in
#: the background (the page never waits: a rebuild beside it would double its time), and one
#: older than ``MAX_AGE`` only after rebuilding it. Open streams keep it fresh meanwhile.
PAGE_AGE, MAX_AGE = 2.0, 5.0
#: How many generations' changes are kept: a stream further behind gets the whole picture.
CHANGES_KEPT = 64
#: Encoded payloads kept at most (one per kind of viewer and starting point).
PAYLOADS_KEPT = 1_000


class LiveFeed:
    """The background builder; pages read ``sites`` and wait for ``generation`` to move."""

    def __init__(self, engine: Engine, refresh: float = REFRESH) -> None:
        self.engine, self.refresh = engine, refresh
        self.sites: list[SiteLive] = []
        self.generation = 0
        self._listeners = 0
        self._refreshing = False
        self._built_at = float("-inf")
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one build at a time; the others wait for it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The sites that changed in each recent generation, newest last.
        self._changes: deque[tuple[int, frozenset[str]]] = deque(maxlen=CHANGES_KEPT)
        self._payloads: dict[Hashable, tuple[int, str]] = {}
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def current(self) -> list[SiteLive]:
        """The picture for a page load (see ``PAGE_AGE``)."""
        age = time.monotonic() - self._built_at
        if age > MAX_AGE:
            self._rebuild(older_than=MAX_AGE)
        elif age > PAGE_AGE:
            with self._lock:
                if self._refreshing:
                    return self.sites
                self._refreshing = True
            threading.Thread(target=self._refresh_once, name="live-refresh", daemon=True).start()
        return self.sites

    def _refresh_once(self) -> None:
        try:
            self._rebuild()
        except Exception:
            log.exception("live overview: rebuild failed")
        finally:
            self._refreshing = False

    @contextmanager
    def listening(self) -> Iterator[LiveFeed]:
        """While inside, the picture is kept fresh for one more listener."""
        with self._lock:
            self._listeners += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
                self._thread.start()
        try:
            yield self
        finally:
            with self._lock:
                self._listeners -= 1

    @property
    def closed(self) -> bool:
        """The hub is stopping: streams end so that it need not wait for them."""
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._wake()

    async def changed(self, seen: int, timeout: float) -> None:
        """Return once the picture moved past generation ``seen``, the feed closed, or after
        ``timeout`` seconds; a stream sleeps here instead of polling."""
        loop = asyncio.get_running_loop()
        waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] = (
            loop,
            loop.create_future(),
        )
        with self._lock:
            self._waiters.add(waiter)
        try:
            if self.generation == seen and not self.closed:
                await asyncio.wait_for(waiter[1], timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def payload(self, who: Principal, site: str | None, seen: int) -> tuple[int, str]:
        """The generation now and, as JSON, the sites ``who`` may see (only ``site``, if given)
        that changed since generation ``seen`` (all of them for a new stream)."""
        scope = (Scope(who).key, site)
        with self._lock:
            generation, sites = self.generation, self.sites
            changed = self._changed_since(seen)
            hit = self._payloads.get((scope, changed))
        if hit is not None and hit[0] == generation:
            return hit
        chosen = [
            s
            for s in sites
            if (site is None or s.site == site) and (changed is None or s.site in changed)
        ]
        body = json.dumps(visible(chosen, who), separators=(",", ":"))
        with self._lock:
            if len(self._payloads) >= PAYLOADS_KEPT:
                self._payloads.clear()
            self._payloads[(scope, changed)] = (generation, body)
        return generation, body

    def _changed_since(self, seen: int) -> frozenset[str] | None:
        """The sites changed after generation ``seen``; None if that is too long ago to say."""
        if seen < 0 or not self._changes or self._changes[0][0] > seen + 1:
            return None
        return frozenset().union(*(ids for gen, ids in self._changes if gen > seen))

    def _wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that stream's loop is already closed
                loop.call_soon_threadsafe(_resolve, future)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh):
            if self._listeners:
                try:
                    self._rebuild()
                except Exception:  # a store hiccup must not end the feed for good
                    log.exception("live overview: rebuild failed; trying again")

    def _rebuild(self, older_than: float = 0.0) -> None:
        """Build the picture, unless one younger than ``older_than`` seconds was built while
        this caller waited for the build lock."""
        with self._build_lock:
            if time.monotonic() - self._built_at <= older_than:
                return
            self._publish(build_live(self.engine))

    def _publish(self, sites: list[SiteLive]) -> None:
        with self._lock:
            self._built_at = time.monotonic()
            if sites == self.sites:
                return
            before = {s.site: s for s in self.sites}
            changed = frozenset(s.site for s in sites if before.get(s.site) != s)
            self.sites = sites
            self.generation += 1
            self._changes.append((self.generation, changed))
        self._wake()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
