"""Room kept for the store: a file of ``RESERVE_BYTES`` beside it, given up to start on a full disk.

SQLite cannot even open a store in WAL mode on a full disk: it needs room for its shared memory
and its log. A door restarted then (a power cut, a watchdog) would fail to start, again and
again, in its fail state, until someone freed space. So the agent keeps a reserve; a start that
finds less room than the reserve's size deletes it and starts in the room it leaves. While there
is less room than that (or the reserve cannot be made again), the ``disk`` fault says the disk is
all but full: the hub hears of it before, or as, the store's writes fail.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Room kept for the store (SQLite's shared memory is 32 KiB; a decision writes a few pages).
RESERVE_BYTES = 1 << 20
FULL = f"less than {RESERVE_BYTES >> 20} MiB free on the store's disk"


def reserve_path(store: Path) -> Path:
    return store.with_name(store.name + ".reserve")


def free_bytes(directory: Path) -> int:
    """Room left for an unprivileged process (the agent runs as its own user)."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def release_if_full(store: Path) -> bool:
    """Give up the reserve if the disk has less room than it; whether it was given up."""
    reserve = reserve_path(store)
    if not reserve.exists() or free_bytes(store.parent) >= RESERVE_BYTES:
        return False
    reserve.unlink()
    log.error("the disk is full: starting in the room kept for the store")
    return True


def keep_reserve(store: Path) -> bool:
    """Make the reserve if it is not there and the disk has room for it and as much again;
    whether it is in place."""
    reserve = reserve_path(store)
    try:
        if reserve.stat().st_size == RESERVE_BYTES:
            return True
    except FileNotFoundError:
        pass
    if free_bytes(store.parent) < 2 * RESERVE_BYTES:
        return False
    partial = reserve.with_name(reserve.name + ".partial")
    try:
        with partial.open("wb") as f:
            f.write(bytes(RESERVE_BYTES))  # written, not sparse: the room is really taken
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, reserve)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        log.warning("could not keep room for the store: %s", exc)
        return False
    return True
