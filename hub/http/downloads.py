"""How much doors may download at once, so that a misbehaving door (or a stolen key, until
it is revoked) cannot saturate the hub: a request rate per device, and a bounded number of
files streaming at once per device and in all.

A file's slot is held until its answer has been sent, or the door went away mid-way: the
answer gives it back itself (``CountedFile``), since the route has long returned by then.
The counts live in the process, so each hub replica counts for itself.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, status
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

from hafen.releases import MAX_FILES
from hub.rate_limits import BucketsByKey, Slots

#: Downloads are never kept by a cache between the door and the hub: each must be asked
#: for with the door's own signature.
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class DownloadLimits:
    """Requests per second per device after a burst of a whole release's files, files at
    once per device, and files at once in all."""

    rate: float = 2.0
    burst: int = MAX_FILES + 10
    per_device: int = 2
    total: int = 32


class DownloadGate:
    """Keeps ``limits`` (see the module)."""

    def __init__(self, limits: DownloadLimits = DownloadLimits()) -> None:
        self.limits = limits
        self._requests = BucketsByKey(limits.rate, limits.burst)
        self._files = Slots(limits.per_device, limits.total)

    def admit(self, device: Hashable) -> None:
        """Count one request of ``device``; 429 with Retry-After over its rate."""
        if not self._requests.take(device):
            wait = max(1, math.ceil(1 / self.limits.rate))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many requests from this device; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def send_file(self, device: Hashable, path: Path, stat: os.stat_result) -> CountedFile:
        """The answer streaming ``path`` in one of ``device``'s slots; 429 if it has none
        free, or the hub has none free at all."""
        if not self._files.take(device):
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many downloads at once; finish one first",
                headers={"Retry-After": "5"},
            )
        return CountedFile(self._files, device, path, stat)

    def streaming(self, device: Hashable | None = None) -> int:
        """Files streaming now, for ``device`` or in all (None)."""
        return self._files.held(device)


class CountedFile(FileResponse):
    """A file answered from a slot taken for it, given back once the answer ends, however
    it ends (sent, failed, or the door gone)."""

    def __init__(self, slots: Slots, device: Hashable, path: Path, stat: os.stat_result) -> None:
        super().__init__(
            path, media_type="application/octet-stream", headers=NO_STORE, stat_result=stat
        )
        self._slots, self._device = slots, device

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back(self._device)
