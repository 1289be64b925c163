"""One process at a time drives a door: the agent (``hafen edge run``) or a technician's
self-test (``hafen edge selftest``).

SQLite lets any number of processes open the store, so the store alone does not tell that a
door is being driven. The pins and the reader do, but badly: a second process on a Pi gets
"GPIO busy" from the strike's pin or "resource busy" from the USB reader, naming neither the
agent nor what to do. So whoever drives the door claims it: an exclusive ``flock`` on a file
beside the store (``edge.db.lock``), held for as long as it runs, with who it is written in
the file for the one refused. The kernel drops the lock when the process ends, however it
ends (kill -9, a power cut), so a claim is never left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DoorInUse(Exception):
    """Another process drives this door; the message says who (as it wrote it)."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(f"the door is in use by {holder}")


def claim_path(store_path: Path) -> Path:
    """The file whose lock claims the door of the store at ``store_path``."""
    return store_path.with_name(store_path.name + ".lock")


class DoorClaim:
    """Claims the door of one store for this process: ``take`` it, or DoorInUse; ``release``
    it (also by ending the process)."""

    def __init__(self, store_path: Path, who: str) -> None:
        self.path = claim_path(Path(store_path))
        self.who = who
        self._fd: int | None = None

    def take(self) -> None:
        """Claim the door now, without waiting; DoorInUse if another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            # Its holder may not have written its name yet (it took the lock a moment ago).
            raise DoorInUse(holder or "another process") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.who} (pid {os.getpid()})\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor drops the lock

    def __enter__(self) -> DoorClaim:
        self.take()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
