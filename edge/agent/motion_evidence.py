"""What the rooms' PIRs say about the headcount, as likelihoods for the belief.

A ceiling PIR module raises its output on movement and holds it ``hold_seconds`` after the
*last* movement it saw, so a busy room keeps it high for hours; the agent hears both edges.
Three things follow, each a likelihood over the count, never a rule that sets it:

* **A line rises**: someone moved, or the sensor fired on its own (heating, insects, light).
  With nobody inside only the latter is possible, so an empty count is weighed down by
  ``false_trigger``, no further: one blip at night does not make the space occupied.
* **A line stays high** past its hold: movement keeps retriggering it. With nobody inside that
  needs one false trigger after another, so the empty count fades with every hold time.
* **Every line is low**: nobody has moved for a while. ``Stillness`` says how likely that is
  for one person (seated people go 5-20 minutes between movements a ceiling PIR sees,
  sometimes 30-45); for ``n`` people it is that to the ``n``-th power. A small ``blind`` share
  stands for everything that hides people from every PIR (a corner out of view, a sensor that
  failed): within the hour, silence alone lowers a count a thousandfold at most; only hours
  of it, longer than people plausibly stay unseen, rule it out.
* **How fast** people move differs by site (a PIR's sensitivity and placement, the crowd):
  every likelihood is averaged over a few paces (``PACES``), and the weight of each is
  learnt from how well it explained what the lines did.

Door activity restarts the quiet: people walking to the door are what the PIRs last saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

Likelihood = Callable[[int], float]
#: A likelihood for each pace the site's people may move at (``MotionEvidence.paces``).
Paced = dict[float, Likelihood]
#: How much slower (> 1) or faster than ``Stillness`` a site's people may show on its PIRs,
#: with the prior weight of each: sensor sensitivity and placement differ as much as people.
PACES = {0.25: 0.15, 0.5: 0.25, 1.0: 0.4, 2.0: 0.2}
#: Each hour the learnt pace forgets this share, back toward ``PACES``: the people change.
PACE_FORGETS_PER_HOUR = 0.05


@dataclass(frozen=True)
class Stillness:
    """How long one person at a desk goes without moving enough for a ceiling PIR.

    Field studies of seated office work (and the issue that asked for this estimator) put
    the gaps at 5-20 minutes, sometimes 30-45; a few sit longer still. Each class is gaps
    spread evenly between two bounds, with its share of all gaps. Silence is judged by the
    time since each person last moved, at a moment nobody chose: a long gap is more likely to
    be the one under way (the renewal "age"), which ``one`` accounts for.
    """

    #: (share of gaps, shortest minutes, longest minutes)
    gaps: tuple[tuple[float, float, float], ...] = (
        (0.83, 5.0, 20.0),
        (0.15, 30.0, 45.0),
        (0.02, 60.0, 120.0),
    )
    #: The chance that nobody inside is seen by any PIR (a corner out of view, a sensor
    #: that failed), and how many minutes such blindness lasts: rarely hours, and a PIR that
    #: stays dead is a fault to report and fix, not a reason to believe a count forever.
    blind: float = 1e-3
    blind_minutes: float = 120.0

    def at_pace(self, pace: float) -> Stillness:
        """The same people with every gap ``pace`` times as long (a less sensitive PIR, a
        quieter crowd: > 1)."""
        gaps = tuple((share, lo * pace, hi * pace) for share, lo, hi in self.gaps)
        return Stillness(gaps, self.blind, self.blind_minutes)

    def one(self, minutes: float) -> float:
        """The chance that one person has not moved for ``minutes``."""
        mean = sum(share * (lo + hi) / 2 for share, lo, hi in self.gaps)
        return sum(share * _still_beyond(minutes, lo, hi) for share, lo, hi in self.gaps) / mean

    def quiet(self, minutes: float, people: int) -> float:
        """The chance that ``people`` have all kept still for ``minutes``."""
        if people == 0:
            return 1.0
        return (1 - self.blind) * self.one(minutes) ** people + self.unseen(minutes)

    def unseen(self, minutes: float) -> float:
        """The chance that people went unseen by every PIR for ``minutes``."""
        return self.blind * math.exp(-minutes / self.blind_minutes)

    def ending(self, minutes: float, false_per_minute: float) -> Likelihood:
        """The likelihood (per minute) of a first movement after ``minutes`` of silence, for
        each count: ``n`` people each about to move, or a false trigger."""
        mean = sum(share * (lo + hi) / 2 for share, lo, hi in self.gaps)
        moving = sum(share * _still_at(minutes, lo, hi) for share, lo, hi in self.gaps) / mean
        still, blind, unseen = self.one(minutes), self.blind, self.unseen(minutes)

        def likelihood(n: int) -> float:
            if n == 0:
                return false_per_minute
            seen = (1 - blind) * n * moving * still ** (n - 1)
            quiet = (1 - blind) * still**n + unseen
            return (seen / quiet if quiet > 0 else 0.0) + false_per_minute

        return likelihood


def _quieter(still: Stillness, before: float, after: float) -> Likelihood:
    """The likelihood, per count, that a silence of ``before`` minutes went on to ``after``."""
    blind, now_still, then_still = still.blind, still.one(after), still.one(before)
    now_unseen, then_unseen = still.unseen(after), still.unseen(before)

    def likelihood(n: int) -> float:
        then = (1 - blind) * then_still**n + then_unseen
        # After months of silence both are below what a float holds: nothing more to learn.
        return ((1 - blind) * now_still**n + now_unseen) / then if then > 0 else 1.0

    return likelihood


def _still_at(minutes: float, lo: float, hi: float) -> float:
    """The share of gaps, even in lo..hi, longer than ``minutes``."""
    if minutes <= lo:
        return 1.0
    return max(0.0, (hi - minutes) / (hi - lo))


def _still_beyond(minutes: float, lo: float, hi: float) -> float:
    """The integral over gaps longer than ``minutes`` of their survival, gaps even in lo..hi."""
    if minutes <= lo:
        return (lo + hi) / 2 - minutes
    if minutes >= hi:
        return 0.0
    return (hi - minutes) ** 2 / (2 * (hi - lo))


@dataclass
class _Line:
    high: bool = False
    rose: datetime | None = None
    fell: datetime | None = None


@dataclass
class MotionEvidence:
    """Tracks the rooms' PIR lines and turns them into likelihoods over the count."""

    rooms: tuple[str, ...]
    hold_seconds: float = 30.0
    stillness: Stillness = field(default_factory=Stillness)
    #: A rise with nobody inside: how likely, against one with someone moving.
    false_trigger: float = 0.05
    #: How often a PIR fires with nobody there (heating, insects, light): a few a night.
    false_per_minute: float = 0.003
    #: Someone walking about pauses now and then just long enough for the line to fall;
    #: the silence counts (and its end says how many were still) only once it has lasted
    #: this long, when whoever moved last has sat down.
    settle_minutes: float = 2.0
    #: A line held high with nobody inside: the share of sensors stuck high.
    stuck: float = 1e-3
    #: A rise this soon after the door closed may be those who just left, seen through glass
    #: or in the doorway: it says little.
    leaving_grace: timedelta = timedelta(minutes=2)
    #: A room counts as occupied this long after its line fell.
    room_hold: timedelta = timedelta(minutes=10)
    #: The weight of each pace, learnt from what the lines do (``learn_pace``).
    paces: dict[float, float] = field(default_factory=lambda: dict(PACES))
    _lines: dict[str, _Line] = field(default_factory=dict)
    _door_at: datetime | None = None
    _closed_at: datetime | None = None
    _still: dict[float, Stillness] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lines = {room: _Line() for room in self.rooms}
        self._still = {pace: self.stillness.at_pace(pace) for pace in self.paces}

    def learn_pace(self, fit: dict[float, float], hours: float = 0.0) -> None:
        """Weigh each pace by how well it explained what was just seen (``fit``: the
        evidence's likelihood under each, averaged over the counts), forgetting a little."""
        weights = {pace: w * fit.get(pace, 1.0) for pace, w in self.paces.items()}
        total = sum(weights.values())
        if total <= 0:
            return
        forget = 1 - math.exp(-PACE_FORGETS_PER_HOUR * hours)
        self.paces = {
            pace: (1 - forget) * w / total + forget * PACES.get(pace, 0.0)
            for pace, w in weights.items()
        }

    # -- inputs --------------------------------------------------------------------------------
    def rose(self, room: str, at: datetime) -> Paced | None:
        """A PIR line went high: the likelihood to weigh the belief with (None: not a room).

        After a silence, the first to move ends it, and the more people there are, the sooner
        one of them does: the rise is weighed by each count's chance of ending the silence
        just now (``Stillness.ending``), against a false trigger for an empty count. While
        another line is high the rise says only that someone is there."""
        line = self._lines.get(room)
        if line is None:
            return None
        quiet_from = None if self.any_high() else self._quiet_from()
        line.high, line.rose = True, at
        grace = self._closed_at is not None and at - self._closed_at < self.leaving_grace
        silence = (at - quiet_from).total_seconds() / 60 if quiet_from else 0.0
        if grace or quiet_from is None or silence < self.settle_minutes:
            empty = 0.5 if grace else self.false_trigger
            return self._same(lambda n: empty if n == 0 else 1.0)
        minutes = silence - self.settle_minutes
        return {
            pace: still.ending(minutes, self.false_per_minute)
            for pace, still in self._still.items()
        }

    def _same(self, likelihood: Likelihood) -> Paced:
        return dict.fromkeys(self.paces, likelihood)

    def fell(self, room: str, at: datetime) -> None:
        line = self._lines.get(room)
        if line is not None:
            line.high, line.fell = False, at

    def door(self, at: datetime, closed: bool = False) -> None:
        """The door opened or closed: the quiet starts again."""
        self._door_at = at
        if closed:
            self._closed_at = at

    def levels(self, raised: dict[str, bool], at: datetime) -> None:
        """The lines as read at ``at`` (on start, or to catch an edge that was missed)."""
        for room, high in raised.items():
            line = self._lines.get(room)
            if line is not None and line.high != high:
                line.high = high
                if high:
                    line.rose = at
                else:
                    line.fell = at

    # -- the clock -----------------------------------------------------------------------------
    def passing(self, since: datetime, now: datetime) -> Paced | None:
        """The likelihood of what the lines did between ``since`` and ``now``."""
        if now <= since or not self._lines:
            return None
        high = [line for line in self._lines.values() if line.high]
        if high:
            held = self._held(high, since, now)
            return self._same(held) if held is not None else None
        quiet_from = self._quiet_from()
        if quiet_from is None:
            return None
        # Minutes since the last movement: the line fell ``hold`` after it. The first
        # minutes of a silence say nothing (see ``settle_minutes``).
        settle = self.settle_minutes
        before = max(0.0, (since - quiet_from).total_seconds() / 60 - settle)
        after = max(0.0, (now - quiet_from).total_seconds() / 60 - settle)
        if after <= before:
            return None
        return {pace: _quieter(still, before, after) for pace, still in self._still.items()}

    def _held(self, high: list[_Line], since: datetime, now: datetime) -> Likelihood | None:
        """Lines held past their hold: an empty count explains it only by false triggers,
        or by a sensor stuck high."""
        hold = timedelta(seconds=self.hold_seconds)
        grace_end = self._closed_at + self.leaving_grace if self._closed_at else None
        ratio = 1.0
        for line in high:
            start = line.rose or since
            if grace_end is not None and grace_end > start:
                start = grace_end
            start += hold
            if now > start:
                before = max(timedelta(0), since - start) / hold
                after = (now - start) / hold
                ratio = min(ratio, self._fade(after) / self._fade(before))
        if ratio >= 1.0:
            return None
        return lambda n: ratio if n == 0 else 1.0

    def _fade(self, holds: float) -> float:
        return (1 - self.stuck) * math.exp(-holds) + self.stuck

    def _quiet_from(self) -> datetime | None:
        moments = [line.fell for line in self._lines.values() if line.fell is not None]
        if self._door_at is not None:
            moments.append(self._door_at)
        return max(moments) if moments else None

    # -- reading -------------------------------------------------------------------------------
    def room_active(self, room: str, now: datetime) -> bool:
        """The room's line is high, or fell less than ``room_hold`` ago."""
        line = self._lines.get(room)
        if line is None:
            return False
        return line.high or (line.fell is not None and now - line.fell < self.room_hold)

    def any_high(self) -> bool:
        return any(line.high for line in self._lines.values())
