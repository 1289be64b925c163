"""The rooms' CO2 as a measure of how many people are breathing in them.

Each person breathes out CO2 (about 0.33 L a minute at a desk); ventilation swaps the room's
air for outdoor air at some air changes per hour (ACH). The CO2 in a room of volume V is a
single well-mixed zone (the usual mass balance):

    V · dC/dt = q · n_room − ACH/60 · V · (C − C_outdoor)

Summed over the rooms that have a sensor, the CO2 the air holds above outdoor, counted in
person-minutes (what one person breathes out in a minute), rises by the number of people
inside every minute and falls by what ventilation removes, which follows from the measured
concentrations alone. So the site's total needs no guess of who sits in which room.
``AirWatch`` turns the readings into that total every ``period`` and hands it to the belief
(``CountBelief.air_observe``), with how noisy it is; the belief compares it with what each
count would have breathed.

Learnt from the readings themselves, because no config knows them well: each sensor's noise
(from successive readings), its outdoor level (the lowest half-hour it saw in the last days:
ventilated empty rooms reach it at night; it also absorbs a sensor's offset), and the room's
air changes an hour, open and closed, from how its air falls while the space is surely empty
(``edge.agent.air_learning``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge.agent.air_learning import DecayLearner

#: Litres of CO2 one adult breathes out a minute at a desk, talking now and then.
LITRES_PER_PERSON_MINUTE = 0.33
OUTDOOR_PPM = 420.0
#: The least noise a sensor is believed to have (ppm): a learnt noise near zero would make
#: the filter trust one sensor completely. The same reading this many times: stuck.
NOISE_FLOOR_PPM, STUCK_AFTER = 5.0, 10
#: How far a learnt outdoor level may be off (one sigma, ppm): sensor drift, outdoor air.
OUTDOOR_SD_PPM = 10.0
#: A sensor not heard from this long: the air can no longer be followed.
SILENT_AFTER = timedelta(minutes=5)
#: The outdoor level is the lowest mean over this long, within the last ``BASELINE_DAYS``.
BASELINE_WINDOW, BASELINE_DAYS = timedelta(minutes=30), 3


@dataclass(frozen=True)
class RoomAir:
    """A room's air: volume (m³), and air changes per hour while open and while closed."""

    volume_m3: float
    changes_open: float = 2.0
    changes_closed: float = 0.5


@dataclass(frozen=True)
class AirObservation:
    """What the air says over one period, in person-minutes."""

    held: float  # CO2 above outdoor in the covered rooms
    noise_var: float  # the variance of ``held`` from the sensors' noise
    removed: float  # what ventilation took out over the period
    rate: float  # air changes a minute, weighted by volume
    minutes: float


@dataclass
class _Sensor:
    air: RoomAir
    open_rate: DecayLearner
    closed_rate: DecayLearner
    readings: list[float] = field(default_factory=list)  # this period's
    last: float | None = None
    heard: datetime | None = None
    held_before: float | None = None  # person-minutes at the previous observation
    noise_sq: float = 20.0**2
    window: deque[tuple[datetime, float]] = field(default_factory=deque)
    lows: deque[tuple[datetime, float]] = field(default_factory=deque)
    outdoor: float | None = None
    same: int = 0  # readings in a row equal to the one before

    @property
    def stuck(self) -> bool:
        """A real sensor's readings wander by a few ppm; the same number again and again is
        a sensor stuck (at its range's end, or frozen), and its air is not believed."""
        return self.same >= STUCK_AFTER

    def learn(self, at: datetime, ppm: float) -> None:
        self.same = self.same + 1 if ppm == self.last else 0
        if self.last is not None:  # successive readings differ by noise (and slow change)
            step = min((ppm - self.last) ** 2 / 2, 200.0**2)
            self.noise_sq = max(NOISE_FLOOR_PPM**2, self.noise_sq + (step - self.noise_sq) / 40)
        self.last, self.heard = ppm, at
        self.window.append((at, ppm))
        while self.window and at - self.window[0][0] > BASELINE_WINDOW:
            self.window.popleft()
        if at - self.window[0][0] >= BASELINE_WINDOW * 0.9:
            mean = sum(p for _, p in self.window) / len(self.window)
            hour = at.replace(minute=0, second=0, microsecond=0)
            if self.lows and self.lows[-1][0] == hour:
                if mean < self.lows[-1][1]:
                    self.lows[-1] = (hour, mean)
            else:  # one low an hour: at most 24 · BASELINE_DAYS kept
                self.lows.append((hour, mean))
            while self.lows and at - self.lows[0][0] > timedelta(days=BASELINE_DAYS):
                self.lows.popleft()
            self.outdoor = min(low for _, low in self.lows)


@dataclass
class AirWatch:
    """Collects the CO2 readings of the rooms with a sensor; ``observe`` every ``period``."""

    rooms: dict[str, RoomAir]
    litres_per_person_minute: float = LITRES_PER_PERSON_MINUTE
    outdoor_ppm: float = OUTDOOR_PPM
    period: timedelta = timedelta(minutes=2)
    _sensors: dict[str, _Sensor] = field(default_factory=dict)
    _last: datetime | None = None

    def __post_init__(self) -> None:
        self._sensors = {
            room: _Sensor(air, DecayLearner(air.changes_open), DecayLearner(air.changes_closed))
            for room, air in self.rooms.items()
        }

    def reading(
        self, room: str, ppm: float | None, at: datetime, empty: bool = False, open_now: bool = True
    ) -> None:
        """A sensor's reading (None: the reading failed). ``empty``: the space is surely
        empty now, so the reading also teaches the room's air changes (``air_learning``)."""
        sensor = self._sensors.get(room)
        if sensor is None or ppm is None or not 0 < ppm < 100_000:
            return
        sensor.readings.append(ppm)
        sensor.learn(at, ppm)
        excess = ppm - (sensor.outdoor if sensor.outdoor is not None else self.outdoor_ppm)
        learning, idle = (
            (sensor.open_rate, sensor.closed_rate)
            if open_now
            else (sensor.closed_rate, sensor.open_rate)
        )
        learning.reading(at, excess, empty)
        idle.reading(at, excess, False)  # a stretch spanning opening or closing is no fit

    def changes(self, room: str) -> tuple[float, float] | None:
        """The room's air changes an hour in use, (open, closed): learnt, or as configured."""
        sensor = self._sensors.get(room)
        return (sensor.open_rate.changes, sensor.closed_rate.changes) if sensor else None

    def due(self, now: datetime) -> bool:
        """An observation is due: a period has passed, or the clock went back (it then
        starts the air afresh)."""
        if not self._sensors:
            return False
        return self._last is None or not timedelta(0) <= now - self._last < self.period

    def observe(self, now: datetime, open_now: bool) -> AirObservation | None:
        """The period's observation, if every sensor was heard; None otherwise (and then the
        next observation starts afresh: ``following`` tells whether the air is followed)."""
        minutes = (now - self._last).total_seconds() / 60 if self._last else 0.0
        self._last = now
        if not all(s.readings and not s.stuck for s in self._sensors.values()):
            for sensor in self._sensors.values():
                sensor.readings = []
            return None
        scale = self._scale
        held = noise = removed = changes_volume = 0.0
        fresh = True
        for sensor in self._sensors.values():
            mean = sum(sensor.readings) / len(sensor.readings)
            outdoor = sensor.outdoor if sensor.outdoor is not None else self.outdoor_ppm
            room_held = sensor.air.volume_m3 * (mean - outdoor) * scale
            noise += (sensor.air.volume_m3 * scale) ** 2 * sensor.noise_sq / len(sensor.readings)
            changes = (sensor.open_rate if open_now else sensor.closed_rate).changes
            changes_volume += changes / 60 * sensor.air.volume_m3
            before = sensor.held_before if sensor.held_before is not None else room_held
            removed += changes / 60 * (before + room_held) / 2 * minutes
            fresh = fresh and sensor.held_before is not None
            sensor.held_before, sensor.readings = room_held, []
            held += room_held
        rate = changes_volume / sum(s.air.volume_m3 for s in self._sensors.values())
        if not fresh or minutes <= 0:
            return AirObservation(held, noise, 0.0, rate, 0.0)
        return AirObservation(held, noise, removed, rate, minutes)

    @property
    def _scale(self) -> float:
        """Person-minutes per ppm·m³."""
        return 1e-6 * 1000 / self.litres_per_person_minute

    @property
    def offset_sd(self) -> float:
        """How far the learnt outdoor levels may be off, in person-minutes (one sigma)."""
        volume = sum(s.air.volume_m3 for s in self._sensors.values())
        return OUTDOOR_SD_PPM * volume * self._scale

    def silent(self, now: datetime) -> bool:
        """Whether a sensor has not been heard for ``SILENT_AFTER`` (or ever), or is stuck."""
        return any(
            s.heard is None or now - s.heard > SILENT_AFTER or s.stuck
            for s in self._sensors.values()
        )

    def restart(self) -> None:
        """Forget the previous observation: the next one starts the air afresh."""
        for sensor in self._sensors.values():
            sensor.held_before = None

    def outdoor(self, room: str) -> float | None:
        sensor = self._sensors.get(room)
        return sensor.outdoor if sensor else None
