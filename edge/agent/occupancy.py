"""How many people are in a space, estimated honestly from what a door and PIR sensors see.

The door is locked from outside, so it opens from outside only after an allowed tap; from
inside it opens freely (free egress). The estimator pairs each door opening with the tap or
exit-button press just before it: tap + opening is an entry, press + opening an exit. An
opening with neither came from inside: most likely someone leaving without pressing the
button, counted as an exit and noted as uncertain (it may have been someone letting a guest
in). A door held open long most likely let a second person through (tailgating in, or two
leaving together): counted, and noted as uncertain. PIR motion corrects the count: motion
while it is zero means someone is there; no motion in any room for ``empty_after`` means
nobody is; closing time resets to zero. Every estimate carries a confidence that falls with
each uncertain event since the last reset.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hafen.acl import TimeWindow

#: Each uncertain event since the last reset multiplies the confidence by this.
UNCERTAINTY_FACTOR = 0.8
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class OccupancySettings:
    """How the estimator reads a space (from the site's ``[occupancy]`` config)."""

    capacity: int | None = None
    rooms: tuple[str, ...] = ()
    #: A tap or exit press pairs with a door opening at most this long after it.
    pair_seconds: float = 15.0
    #: A door open longer than this let a second person through (tailgating, or two leaving).
    held_seconds: float = 7.0
    #: Count that second person (else only lower the confidence).
    count_followers: bool = True
    #: No motion in any room this long: nobody is there.
    empty_after: timedelta = timedelta(minutes=20)
    #: A room counts as occupied this long after its last motion.
    room_hold: timedelta = timedelta(minutes=10)
    #: Motion this soon after the door closed is the people who just left, walking out.
    leaving_grace: timedelta = timedelta(minutes=2)
    #: Opening hours; the count is reset to zero at the end of each window.
    opening_hours: tuple[TimeWindow, ...] = ()
    #: The site's time zone: opening hours are local wall-clock times.
    timezone: ZoneInfo = _UTC


@dataclass(frozen=True)
class Estimate:
    """The estimate at one moment."""

    count: int
    confidence: float
    uncertain: int
    rooms: dict[str, bool]
    present: bool


@dataclass
class _Opening:
    at: datetime
    entry: bool


@dataclass
class OccupancyEstimator:
    """Feed it door, button, tap and motion events in time order; read ``estimate(now)``."""

    settings: OccupancySettings
    count: int = 0
    uncertain: int = 0
    _taps: deque[datetime] = field(default_factory=deque)
    _presses: deque[datetime] = field(default_factory=deque)
    _opening: _Opening | None = None
    _last_close: datetime | None = None
    _last_motion: dict[str, datetime] = field(default_factory=dict)
    _last_activity: datetime | None = None

    # -- what the door saw ------------------------------------------------------------------
    def tap_allowed(self, at: datetime) -> None:
        self._taps.append(at)

    def exit_pressed(self, at: datetime) -> None:
        self._presses.append(at)

    def door_opened(self, at: datetime) -> None:
        self._expire(at)
        self._last_activity = at
        if self._taps and (not self._presses or self._taps[0] <= self._presses[0]):
            self._taps.popleft()
            self._set(self.count + 1)
            self._opening = _Opening(at, entry=True)
            return
        if self._presses:
            self._presses.popleft()
        else:
            self.uncertain += 1  # opened from inside without the button: leaving, we guess
        self._set(self.count - 1)
        self._opening = _Opening(at, entry=False)

    def door_closed(self, at: datetime) -> None:
        opening, self._opening = self._opening, None
        if opening is None:
            return  # closed without an opening we saw (the agent just started): nobody left
        self._last_close = self._last_activity = at
        if (at - opening.at).total_seconds() <= self.settings.held_seconds:
            return
        # Held open: most likely a second person went through with the first.
        self.uncertain += 1
        if self.settings.count_followers:
            self._set(self.count + (1 if opening.entry else -1))

    def _expire(self, now: datetime) -> None:
        limit = timedelta(seconds=self.settings.pair_seconds)
        for pending in (self._taps, self._presses):
            while pending and now - pending[0] > limit:
                pending.popleft()

    @property
    def door_open(self) -> bool:
        """Whether the estimator has seen the door open and not yet closed."""
        return self._opening is not None

    # -- what the rooms saw -----------------------------------------------------------------
    def motion(self, room: str, at: datetime) -> None:
        """A PIR in ``room`` saw movement (rooms not in the settings are ignored)."""
        if room not in self.settings.rooms:
            return
        self._last_motion[room] = at
        leaving = (
            self._last_close is not None and at - self._last_close < self.settings.leaving_grace
        )
        if self.count == 0 and not leaving and self._opening is None:
            self.uncertain += 1  # someone is here whom the door did not count in
            self._set(1)

    def still_moving(self, room: str, at: datetime) -> None:
        """A PIR in ``room`` holds its output raised at ``at``: a busy room keeps it on, and it
        switches on only once (gpiozero's motion is that edge). The room is active, but this
        is no new arrival: the count is left alone."""
        if room in self.settings.rooms:
            self._last_motion[room] = at

    # -- the clock ----------------------------------------------------------------------------
    def tick(self, now: datetime, previous: datetime | None) -> str | None:
        """Apply the resets due at ``now``; returns why the count was reset, if it was."""
        if (
            self.count
            and self.settings.rooms
            and self._idle_since(now) >= self.settings.empty_after
        ):
            self._reset()
            return "no_motion"
        if previous is not None and self._closed_between(previous, now):
            had = self.count
            self._reset()
            return "closing_time" if had else None
        return None

    def _idle_since(self, now: datetime) -> timedelta:
        moments = [t for t in (*self._last_motion.values(), self._last_activity) if t]
        return now - max(moments) if moments else timedelta.max

    def _closed_between(self, previous: datetime, now: datetime) -> bool:
        """Did an opening window end in (previous, now]? Checked in the site's local time."""
        hours, tz = self.settings.opening_hours, self.settings.timezone
        return _open(hours, previous.astimezone(tz)) and not _open(hours, now.astimezone(tz))

    def _reset(self) -> None:
        self.count, self.uncertain = 0, 0
        self._taps.clear()
        self._presses.clear()

    def _set(self, count: int) -> None:
        cap = self.settings.capacity
        self.count = max(0, min(count, cap) if cap else count)

    # -- reading ------------------------------------------------------------------------------
    def estimate(self, now: datetime) -> Estimate:
        rooms = {room: self._room_present(room, now) for room in self.settings.rooms}
        return Estimate(
            count=self.count,
            confidence=round(UNCERTAINTY_FACTOR**self.uncertain, 3),
            uncertain=self.uncertain,
            rooms=rooms,
            present=self.count > 0 or any(rooms.values()),
        )

    def _room_present(self, room: str, now: datetime) -> bool:
        """Motion within ``room_hold``, unless the space is counted empty and that motion came
        before the door last closed or just after (the last people walking out)."""
        seen = self._last_motion.get(room)
        if seen is None or now - seen >= self.settings.room_hold:
            return False
        if self.count > 0 or self._last_close is None:
            return True
        return seen - self._last_close >= self.settings.leaving_grace


def _open(windows: tuple[TimeWindow, ...], local: datetime) -> bool:
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    return any(w.contains(local.weekday(), seconds) for w in windows)
