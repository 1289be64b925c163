"""Group commit: requests that arrive while one batch is being handled go together in the next.

The access-list publisher sends one version at a time per hub process (it reads the newest
version, records the next, waits for the broker's acknowledgement), so under many bookings
at once the requests would queue behind that lock one by one, each paying the database's and
the broker's round trips. Here a request joins a queue and waits for the lock; whoever gets
the lock first handles everything queued by then in one pass, and the others find theirs
done. Nothing is handled before it was submitted, so each caller still returns only once its
own change was sent (the guarantee the services rely on: after the call, the doors have it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")

#: At most this many requests in one pass: a pass's work (and what it holds in memory)
#: stays bounded however many requests wait; the rest go in the next pass.
MAX_BATCH = 256


@dataclass
class _Slot(Generic[Request, Result]):
    request: Request
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Request, Result]):
    """Hands queued requests to ``handle`` in batches, one batch at a time under ``lock``.

    ``handle`` gets the requests in the order they came and returns one result for each, in
    that order. If it raises, every request of that batch raises the same error.
    """

    def __init__(
        self,
        lock: threading.RLock | threading.Lock,
        handle: Callable[[list[Request]], Sequence[Result]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._lock = lock
        self._handle = handle
        self._max_batch = max_batch
        self._queue: list[_Slot[Request, Result]] = []
        self._queue_lock = threading.Lock()

    def submit(self, request: Request) -> Result:
        """Handle ``request`` (with whatever else waits) and return its result."""
        slot: _Slot[Request, Result] = _Slot(request)
        with self._queue_lock:
            self._queue.append(slot)
        with self._lock:
            while not slot.done:  # many waiting: the batches ahead of ours go first
                self._run_batch()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set with done, error unset

    def _run_batch(self) -> None:
        """Handle the oldest waiting requests; their errors go to their own callers."""
        with self._queue_lock:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            results = self._handle([slot.request for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} requests")
        except BaseException as error:  # even an interrupt: no waiting caller is left hanging
            for slot in batch:
                slot.error, slot.done = error, True
            return
        for slot, result in zip(batch, results, strict=True):
            slot.result, slot.done = result, True
