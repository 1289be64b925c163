"""The store's housekeeping, on a thread and a connection of its own, so no tap pays for it:
checkpoint the write-ahead log, check the whole store now and then (bounded in time), have the
agent's loop retry what it keeps in memory while the store cannot be written, and keep room
for the store on the disk (edge.agent.reserve), telling the loop when there is none."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.agent.config import StoreConfig
from edge.agent.reserve import RESERVE_BYTES, free_bytes, keep_reserve
from edge.agent.store import EdgeStore
from edge.agent.store_check import is_corruption, quick_check

log = logging.getLogger(__name__)

#: Seconds a periodic quick_check may take before it is left for the next time.
CHECK_WITHIN = 5.0


@dataclass(frozen=True)
class StoreTick:
    """For the agent's loop: time to retry kept events, or to see whether a recovered store
    has its list."""


@dataclass(frozen=True)
class StoreDamaged:
    """For the agent's loop: the store is damaged."""

    reason: str


@dataclass(frozen=True)
class DiskRoom:
    """For the agent's loop: whether the disk has room (the reserve, and as much again), when
    that changes."""

    room: bool


class Housekeeping:
    """Runs until ``stopping`` is set; ``post`` hands StoreTick, StoreDamaged and DiskRoom to
    the loop."""

    def __init__(
        self,
        settings: StoreConfig,
        post: Callable[[object], None],
        needs_tick: Callable[[], bool],
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self._post = post
        self._needs_tick = needs_tick
        self._stopping = stopping
        #: Seconds between rounds, and between checks of the whole store.
        self.every = 10.0
        self.check_every = 3600.0

    def start(self) -> None:
        threading.Thread(target=self._run, name="housekeeping", daemon=True).start()

    def _run(self) -> None:
        store: EdgeStore | None = None
        checked_at = time.monotonic()
        failing = False
        room = True
        while not self._stopping.wait(self.every):
            path = self.settings.path
            if (keep_reserve(path) and free_bytes(path.parent) >= RESERVE_BYTES) != room:
                room = not room
                self._post(DiskRoom(room))
            try:
                if store is None:
                    store = EdgeStore(self.settings.path, self.settings.synchronous, cache_kib=64)
                store.checkpoint()
                if time.monotonic() - checked_at >= self.check_every:
                    checked_at = time.monotonic()
                    if (damage := quick_check(store.conn, within=CHECK_WITHIN)) is not None:
                        self._post(StoreDamaged(damage))
                failing = False
            except sqlite3.Error as exc:
                if is_corruption(exc):
                    self._post(StoreDamaged(str(exc)))
                elif not failing:  # once per spell: a full disk fails this every round
                    log.warning("housekeeping of the store failed: %s", exc)
                failing = True
            if self._needs_tick():
                self._post(StoreTick())
        if store is not None:
            store.close()
