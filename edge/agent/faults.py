"""The door's current faults, in one place: every component reports here, the state shows them.

A fault is reported twice over: as a ``device.fault`` event through the outbox (the record,
exactly once) and in the door's retained state (what is wrong *now*, which reaches the hub even
when the store cannot be written: a full disk, a corrupted file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hafen.protocol import MAX_FAULTS

#: The longest fault text kept; longer ones are cut.
MAX_FAULT_TEXT = 200


class FaultBoard:
    """Thread-safe map of component -> current fault; ``on_change`` runs after each change."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._faults: dict[str, str] = {}
        self._lock = threading.Lock()
        self.on_change = on_change

    def set(self, component: str, fault: str | None) -> bool:
        """Record ``component``'s fault (None: it recovered); returns whether anything changed."""
        text = None if fault is None else fault[:MAX_FAULT_TEXT]
        with self._lock:
            if self._faults.get(component) == text:
                return False
            if text is None:
                del self._faults[component]
            elif component in self._faults or len(self._faults) < MAX_FAULTS:
                self._faults[component] = text
            else:
                return False  # the state has room for MAX_FAULTS; the events record the rest
        if self.on_change is not None:
            self.on_change()
        return True

    def current(self) -> dict[str, str]:
        """A copy of the faults now."""
        with self._lock:
            return dict(self._faults)
