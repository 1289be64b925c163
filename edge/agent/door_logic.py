"""How a door behaves: unlock pulses, relock on close, and the forced / held-open alarms.

Pure logic over the door hardware and a monotonic clock; every method runs on the agent's single
loop thread, so there is no locking. Timers are deadlines that the loop fires through ``tick``.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.agent.config import DoorConfig
from edge.drivers.door import DoorHardware
from hafen.protocol import AlarmKind, DoorAlarm, EventPayload, ExitRequest

Record = Callable[[EventPayload], None]


class DoorLogic:
    """The state of one door and its reactions to decisions, the contact and the exit button."""

    def __init__(self, cfg: DoorConfig, hardware: DoorHardware, record: Record) -> None:
        self.cfg = cfg
        self.hw = hardware
        self._record = record
        self._relock_at: float | None = None
        self._held_at: float | None = None
        self._relocked_at: float | None = None
        self._opened_at: float | None = None
        self._opened_while_unlocked = False
        self._raised: set[AlarmKind] = set()

    # -- inputs ---------------------------------------------------------------------------------
    def allow(self, now: float) -> None:
        """A card was allowed: unlock for the configured time and show it."""
        self._unlock(now)
        self.hw.signals.allowed(self.cfg.unlock_seconds)

    def deny(self) -> None:
        self.hw.signals.denied()

    def remote_unlock(self, now: float, seconds: float) -> None:
        """The hub opened the door (an operator letting a day guest in)."""
        self._unlock(now, seconds)
        self.hw.signals.allowed(seconds)

    def exit_pressed(self, now: float) -> None:
        """The exit button unlocks like a card would (first: leaving never waits), then records."""
        self._unlock(now)
        self._record(ExitRequest())

    def door_opened(self, now: float) -> None:
        self._opened_at = now
        self._held_at = now + self.cfg.held_open_seconds
        if self.hw.strike.is_unlocked:
            self._opened_while_unlocked = True
            return
        just_relocked = (
            self._relocked_at is not None
            and now - self._relocked_at <= self.cfg.forced_grace_seconds
        )
        if not just_relocked:
            self._raise("forced", now)

    def door_closed(self, now: float) -> None:
        self._held_at = None
        for alarm in sorted(self._raised):
            self._record(DoorAlarm(alarm=alarm, state="cleared", open_seconds=self._open_for(now)))
        self._raised.clear()
        self._opened_at = None
        if self.cfg.relock_on_close and self._opened_while_unlocked and self.hw.strike.is_unlocked:
            # No forced-grace after this relock: whoever opens a door just shut is forcing it.
            self.hw.strike.lock()
            self._relock_at = None

    # -- timers ---------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        pending = [t for t in (self._relock_at, self._held_at) if t is not None]
        return min(pending) if pending else None

    def tick(self, now: float) -> None:
        """Fire every deadline that has passed."""
        if self._relock_at is not None and now >= self._relock_at:
            self._lock(now)
        if self._held_at is not None and now >= self._held_at:
            self._held_at = None
            self._raise("held_open", now)

    # -- internals ------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Take over a door that may already stand open when the agent starts."""
        if self.hw.door_open:
            self._opened_at = now
            self._held_at = now + self.cfg.held_open_seconds

    def _unlock(self, now: float, seconds: float | None = None) -> None:
        if not self.hw.strike.is_unlocked:
            self._opened_while_unlocked = self.hw.door_open
        self.hw.strike.unlock()
        self._relock_at = now + (self.cfg.unlock_seconds if seconds is None else seconds)

    def _lock(self, now: float) -> None:
        """The unlock time ran out (a push in the next moments is not forced)."""
        self.hw.strike.lock()
        self._relock_at = None
        self._relocked_at = now

    def _raise(self, alarm: AlarmKind, now: float) -> None:
        if alarm in self._raised:
            return
        self._raised.add(alarm)
        self.hw.signals.alarm()
        self._record(DoorAlarm(alarm=alarm, state="raised", open_seconds=self._open_for(now)))

    def _open_for(self, now: float) -> float | None:
        return None if self._opened_at is None else round(now - self._opened_at, 3)
