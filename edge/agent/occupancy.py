"""How many people are in a space: a belief built from every signal, weighted by what it knows.

* The door says what *changed*: each opening, read with the tap or exit press before it and
  how long it stood open, is a table of what it may have been (``edge.agent.door_reading``),
  and the belief keeps every possibility, weighted, until another signal decides. An optional
  people counter at the door says the same far more surely.
* The PIRs say *someone* (``edge.agent.motion_evidence``): a rise, a line held high, and how
  long every line has been low, each a likelihood over the count.
* CO2 says *roughly how many* over tens of minutes (``edge.agent.room_air``): the air holds
  what the people inside breathed out, less what ventilation took.
* Opening hours say when nobody should be there: while closed, the belief drifts slowly
  towards empty, which any movement holds back.

The belief (``edge.agent.headcount.CountBelief``) is a probability for each count; the
estimate is its median, with a 90 % interval and the chance of being within one. No single
signal sets the count: every rule above is one likelihood, so a long silence or a closing
time can make an empty space likelier but never declares it alone.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge.agent import door_reading
from edge.agent.door_reading import PassageTiming
from edge.agent.headcount import CountBelief
from edge.agent.motion_evidence import MotionEvidence, Paced, Stillness
from edge.agent.room_air import LITRES_PER_PERSON_MINUTE, AirWatch, RoomAir
from hafen.acl import TimeWindow

_UTC = ZoneInfo("UTC")
#: The belief's largest count without a capacity.
MOST_WITHOUT_CAPACITY = 100
#: A second tap (press) this soon after one is the same person again, not someone else.
REPEAT_WITHIN = timedelta(seconds=2)
#: The space counts as surely empty at this probability: the tally of unread openings restarts.
SURELY_EMPTY = 0.99
#: The space is reported empty only this sure: calling it empty while someone sits still
#: costs more (lights and heating off, a desk given away) than the other way round.
EMPTY_AT = 0.7


@dataclass(frozen=True)
class OccupancySettings:
    """How the estimator reads a space (from the site's ``[occupancy]`` config)."""

    capacity: int | None = None
    rooms: tuple[str, ...] = ()
    #: Rooms with a CO2 sensor and their air; the CO2 counts people only when set.
    air: tuple[tuple[str, RoomAir], ...] = ()
    litres_per_person_minute: float = LITRES_PER_PERSON_MINUTE
    #: A tap or exit press pairs with a door opening at most this long after it.
    pair_seconds: float = 15.0
    timing: PassageTiming = field(default_factory=PassageTiming)
    #: How long the rooms' PIR modules hold their output after the last movement.
    pir_hold_seconds: float = 30.0
    stillness: Stillness = field(default_factory=Stillness)
    #: A room counts as occupied this long after its last motion.
    room_hold: timedelta = timedelta(minutes=10)
    #: People through a propped door, each way, a minute (how fast the count may wander).
    propped_per_minute: float = 1.0
    #: While closed, the chance an hour that a count still held is people who left unseen.
    closed_drift_per_hour: float = 0.25
    #: A people counter at the door reports passages (``passage``).
    counter: bool = False
    opening_hours: tuple[TimeWindow, ...] = ()
    #: The site's time zone: opening hours are local wall-clock times.
    timezone: ZoneInfo = _UTC

    @property
    def most(self) -> int:
        """The belief's largest count: well above the capacity, for crowds beyond it."""
        if self.capacity is None:
            return MOST_WITHOUT_CAPACITY
        return self.capacity + max(5, self.capacity // 2)


@dataclass(frozen=True)
class Estimate:
    """The estimate at one moment."""

    count: int
    low: int
    high: int
    confidence: float  # the chance that the true count is within one of ``count``
    uncertain: int
    rooms: dict[str, bool]
    present: bool


@dataclass
class _Opening:
    at: datetime
    taps: int
    presses: int
    propped_until: datetime | None = None  # how far the propped door's drift has run


@dataclass
class OccupancyEstimator:
    """Feed it what the door, the PIRs, the CO2 sensors and a counter saw, in time order;
    call ``tick`` now and then; read ``estimate(now)``."""

    settings: OccupancySettings
    belief: CountBelief | None = None
    uncertain: int = 0
    _taps: deque[datetime] = field(default_factory=deque)
    _presses: deque[datetime] = field(default_factory=deque)
    _opening: _Opening | None = None
    _evidence_at: datetime | None = None
    _counter_ok: bool = True
    motion_evidence: MotionEvidence | None = None
    air: AirWatch | None = None

    def __post_init__(self) -> None:
        s = self.settings
        if self.belief is None:
            self.belief = CountBelief(s.most)
        self.motion_evidence = MotionEvidence(
            s.rooms, s.pir_hold_seconds, s.stillness, room_hold=s.room_hold
        )
        if s.air:
            self.air = AirWatch(dict(s.air), s.litres_per_person_minute)
            assert self.belief.air is not None
            self.belief.air.offset_sd = self.air.offset_sd

    def start_unknown(self, empty: float) -> None:
        """Forget the count: a door that has just started cannot know who is inside, so the
        belief is ``empty`` likely empty, else a few people (``CountBelief.unknown``)."""
        air = self._belief.air
        self.belief = CountBelief.unknown(self.settings.most, empty=empty)
        if air is not None:
            assert self.belief.air is not None
            self.belief.air.offset_sd = air.offset_sd

    @property
    def _belief(self) -> CountBelief:
        assert self.belief is not None
        return self.belief

    @property
    def _motion(self) -> MotionEvidence:
        assert self.motion_evidence is not None
        return self.motion_evidence

    # -- what the door saw ------------------------------------------------------------------
    def counter_working(self, working: bool) -> None:
        """Whether the door's counter can be trusted now: while a beam is blocked the door
        is read from taps and exit presses, as without a counter."""
        self._counter_ok = working

    @property
    def _counting(self) -> bool:
        return self.settings.counter and self._counter_ok

    def tap_allowed(self, at: datetime) -> None:
        self._advance(at)
        if self._taps and at - self._taps[-1] < REPEAT_WITHIN:
            return  # the same card again: the first tap did not seem to work
        self._taps.append(at)
        if self._opening is not None and not self._counting:
            # A tap while the door stands open: someone coming in (or a habit).
            self._belief.move(lambda n: ((1, 0.9), (0, 0.1)))

    def exit_pressed(self, at: datetime) -> None:
        self._advance(at)
        if self._presses and at - self._presses[-1] < REPEAT_WITHIN:
            return  # the same hand pressing again
        self._presses.append(at)
        if self._opening is not None and not self._counting:
            first = self.settings.timing.first_seconds
            self._belief.move(lambda n: door_reading.exit_by_button(self.settings.timing, first, n))

    def door_opened(self, at: datetime) -> None:
        self._advance(at)
        self._expire(at)
        # Taps read for one opening are capped: no door lets a crowd through on one opening
        # that a table of groups could not read; presses in a run are one exit.
        taps = min(len(self._taps), door_reading.MOST_TAPS)
        presses = min(1, len(self._presses))
        self._taps.clear()
        self._presses.clear()
        self._opening = _Opening(at, taps, presses)
        self._motion.door(at)

    def door_closed(self, at: datetime) -> None:
        self._advance(at)
        opening, self._opening = self._opening, None
        self._motion.door(at, closed=True)
        if opening is None:
            return  # closed without an opening we saw (the agent just started)
        timing = self.settings.timing
        seconds = (at - opening.at).total_seconds()
        if self._counting:
            return  # the counter's passages have moved the count as they came
        if opening.propped_until is not None:
            self.uncertain += 1  # the drift while propped has done what can be done
        elif opening.taps:
            self._belief.move(lambda n: door_reading.entry(timing, seconds, opening.taps))
        elif opening.presses:
            self._belief.move(lambda n: door_reading.exit_by_button(timing, seconds, n))
        else:
            self.uncertain += 1
            self._belief.move(lambda n: door_reading.from_inside(timing, seconds, n))

    def passage(self, direction: str, at: datetime) -> None:
        """The people counter saw someone go ``in`` or ``out``."""
        self._advance(at)
        ins, outs = (1, 0) if direction == "in" else (0, 1)
        self._belief.move(lambda n: door_reading.counted(ins, outs))

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
        """A PIR in ``room`` raised its line (rooms not in the settings are ignored)."""
        self._advance(at)
        self._weigh_motion(self._motion.rose(room, at))

    def motion_ended(self, room: str, at: datetime) -> None:
        """A PIR in ``room`` let its line fall: no movement for its hold time."""
        self._advance(at)
        self._motion.fell(room, at)

    def pir_levels(self, raised: dict[str, bool], at: datetime) -> None:
        """The PIR lines as read now (at start, and to catch a missed edge)."""
        self._advance(at)
        self._motion.levels(raised, at)

    def co2(self, room: str, ppm: int | None, at: datetime) -> None:
        """A CO2 reading in ``room`` (None: it failed)."""
        if self.air is not None:
            empty = self._belief.empty >= SURELY_EMPTY and self._opening is None
            self.air.reading(room, ppm, at, empty=empty, open_now=self.open_at(at))

    # -- the clock ----------------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Let time pass: silence and held lines, a propped door, closed hours, the air."""
        self._advance(now)
        air = self.air
        if air is None or not air.due(now):
            return
        observed = air.observe(now, self.open_at(now))
        belief = self._belief
        if observed is None:
            if air.silent(now):
                belief.forget_air()
                air.restart()
            return
        if observed.minutes <= 0:
            belief.forget_air()  # the first observation (again): it starts the air afresh
        else:
            belief.air_predict(observed.minutes, observed.removed, observed.rate)
        belief.air_observe(observed.held, observed.noise_var)

    def _advance(self, now: datetime) -> None:
        since, self._evidence_at = self._evidence_at, max(now, self._evidence_at or now)
        if since is None or now <= since:
            return
        belief = self._belief
        self._weigh_motion(self._motion.passing(since, now), (now - since).total_seconds() / 3600)
        opening = self._opening
        propped_at = (
            opening.at + timedelta(seconds=self.settings.timing.propped_seconds)
            if opening
            else None
        )
        if opening is not None and propped_at is not None and now > propped_at:
            start = max(opening.propped_until or propped_at, since)
            minutes = (now - start).total_seconds() / 60
            if minutes > 0:
                # With a counter at the door only those who slip past its beams go unseen.
                rate = self.settings.propped_per_minute * (0.1 if self._counting else 1.0)
                drift = door_reading.propped_minute(minutes, rate)
                belief.move(lambda n: drift)
            opening.propped_until = now
        if self.settings.opening_hours and not self.open_at(now):
            hours = (now - since).total_seconds() / 3600
            gone = 1 - math.exp(-self.settings.closed_drift_per_hour * hours)
            # Each person may have left unseen on their own (binomial thinning): a crowd
            # does not vanish at once, and the air can still say how many stayed.
            belief.move(lambda n: _thinned(n, gone))
        if belief.empty >= SURELY_EMPTY:
            self.uncertain = 0

    def _weigh_motion(self, paced: Paced | None, hours: float = 0.0) -> None:
        """Weigh the belief by the PIRs' evidence, averaged over the paces the site's people
        may move at, and learn the pace from how well each explained it."""
        if paced is None:
            return
        belief, weights = self._belief, self._motion.paces
        values = {pace: [f(n) for n in range(belief.most + 1)] for pace, f in paced.items()}
        fit = {pace: sum(map(operator.mul, belief.p, v)) for pace, v in values.items()}
        mixed = [
            sum(weights[pace] * v[n] for pace, v in values.items()) for n in range(belief.most + 1)
        ]
        belief.weigh(mixed.__getitem__)
        self._motion.learn_pace(fit, hours)

    def open_at(self, at: datetime) -> bool:
        """Whether ``at`` is within opening hours (always, without any)."""
        hours = self.settings.opening_hours
        if not hours:
            return True
        local = at.astimezone(self.settings.timezone)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return any(w.contains(local.weekday(), seconds) for w in hours)

    # -- reading ------------------------------------------------------------------------------
    def estimate(self, now: datetime) -> Estimate:
        belief = self._belief
        present = belief.empty < EMPTY_AT
        count = max(belief.median, 1) if present else 0
        low, high = belief.interval(0.9)
        high = max(high, count)
        rooms = {
            room: present and self._motion.room_active(room, now) for room in self.settings.rooms
        }
        return Estimate(
            count=count,
            low=low,
            high=high,
            confidence=round(belief.within(count), 3),
            uncertain=self.uncertain,
            rooms=rooms,
            present=present,
        )


def _thinned(n: int, gone: float) -> list[tuple[int, float]]:
    """Of ``n`` people, each gone with probability ``gone``: the binomial, by recurrence and
    cut where its terms no longer matter (a second's drift is one term or two, not ``n``)."""
    if n == 0 or gone <= 0:
        return [(0, 1.0)]
    if gone >= 1:
        return [(-n, 1.0)]
    term, ratio, out = (1 - gone) ** n, gone / (1 - gone), []
    for k in range(n + 1):
        out.append((-k, term))
        term *= (n - k) / (k + 1) * ratio
        if term < 1e-12 and k >= n * gone:
            break
    return out
