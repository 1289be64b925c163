"""Days of people at a space, written apart from the estimator, with the truth of every second.

Four kinds of day (``DAY_TYPES``): quiet (3-8 members), typical (10-20, guests, meetings), an
evening event (30-45 people arriving within minutes, the door propped) and a long still day
(6 people at their desks for hours). Each is drawn from its seed and a set of ``Behaviours``,
each of which can be switched off alone, so a benchmark can tell what each one costs.

The world is made of people and a door. Each use of the door is an ``Episode``: who went in or
out, whether someone tapped or pressed the exit button, whether it was opened from inside and
how long it stood open. From them come the door's signals (tap, press, open, close; overlapping
openings are one opening, as the reed switch sees them) and the ground truth (people inside).
Inside, each person moves through ``Segment``\\s (at a desk, in a meeting, walking about) whose
movements drive the rooms' PIR output lines and whose breathing drives the rooms' CO2
(``sim.room_sensors``). Nothing here knows how any estimator reads these signals.

Random draws come from named streams (one per behaviour, person and segment), so switching one
behaviour off changes what it should and leaves every other draw as it was.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field, fields
from datetime import datetime
from zoneinfo import ZoneInfo

from sim.day_kinds import plan_day
from sim.people_plans import Behaviours, Episode, Party, Plan, Segment
from sim.room_sensors import (
    CO2_LPM,
    Co2Sensor,
    PirModule,
    RoomAir,
    co2_curve,
    co2_readings,
    pir_line,
)

ROOMS = ("coworking", "meeting")
AIR = {"coworking": RoomAir(volume=300, ach_day=2.0), "meeting": RoomAir(volume=60, ach_day=3.0)}
DAY_TYPES = ("quiet", "typical", "event", "still")
#: Opening hours of the simulated space (seconds of the day); staying later is a behaviour.
OPEN_HOURS = (7 * 3600, 22 * 3600)
START = datetime(2026, 3, 11, tzinfo=ZoneInfo("Europe/Berlin"))  # a Wednesday
DAY = 24 * 3600
CO2_STEP = 10.0
HELD_PIR = PirModule(hold=30.0, blocked=2.5, retrigger=True)
PULSE_PIR = PirModule(hold=2.0, blocked=0.0, retrigger=False)


BEHAVIOURS = tuple(f.name for f in fields(Behaviours))


@dataclass(frozen=True, order=True)
class Signal:
    """What a sensor reports: tap, press, open, close; pir_on, pir_off (room); co2 (room, ppm);
    pass_in, pass_out (a people counter at the door, where a site has one)."""

    at: float
    kind: str
    room: str | None = None
    ppm: int | None = None


@dataclass
class World:
    """One simulated day: the door's episodes, everyone's segments, the sensors' signals."""

    kind: str
    seed: int
    behaviours: Behaviours
    roles: dict[str, str]
    episodes: list[Episode]
    segments: dict[str, list[Segment]]
    movements: dict[str, list[float]]
    pir: dict[str, list[tuple[float, float]]]
    co2: dict[str, list[float]]
    signals: list[Signal]
    start: datetime = START
    _times: list[float] = field(default_factory=list, repr=False)
    _counts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        steps = sorted(self.passages())
        self._times = [t for t, _, _ in steps]
        self._counts = list(itertools.accumulate(d for _, _, d in steps))

    def passages(self) -> list[tuple[float, str, int]]:
        """(second, person, +1 in / -1 out) for everyone who went through the door."""
        out = [(e.at, p, 1) for e in self.episodes for p in e.entering]
        return out + [(e.at, p, -1) for e in self.episodes for p in e.leaving]

    def inside(self, second: float) -> int:
        """The true headcount at ``second`` (after everything that happened at that second)."""
        i = bisect.bisect_right(self._times, second)
        return self._counts[i - 1] if i else 0

    def in_room(self, room: str, second: float) -> int:
        return sum(
            1
            for segs in self.segments.values()
            for s in segs
            if s.room == room and s.start <= second < s.end
        )


def make_world(kind: str, seed: int, behaviours: Behaviours | None = None) -> World:
    """The day of ``kind`` drawn from ``seed``, with the given behaviours (all on by default)."""
    b = behaviours or Behaviours()
    plan = plan_day(kind, seed, b)
    episodes = _door_episodes(plan, b)
    arrive = {p: e.at for e in episodes for p in e.entering}
    leave = {p: e.at for e in episodes for p in e.leaving}
    segments = {p: plan.stays[p](arrive[p], leave[p]) for p in plan.roles}
    movements = _movements(plan, segments, b, seed, kind)
    model = HELD_PIR if b.pir_held_on else PULSE_PIR
    pir = {room: pir_line(movements[room], model) for room in ROOMS}
    co2 = {room: _co2(room, segments) for room in ROOMS}
    signals = _door_signals(episodes) + _beam_passages(
        episodes, random.Random(f"{seed}:{kind}:beams")
    )
    for room in ROOMS:
        for rise, fall in pir[room]:
            signals.append(Signal(rise, "pir_on", room))
            if fall < DAY:
                signals.append(Signal(fall, "pir_off", room))
        rng = random.Random(f"{seed}:{kind}:co2:{room}")
        for t, ppm in co2_readings(co2[room], CO2_STEP, Co2Sensor(), rng):
            signals.append(Signal(t, "co2", room, ppm))
    signals.sort()
    return World(kind, seed, b, plan.roles, episodes, segments, movements, pir, co2, signals)


def _door_episodes(plan: Plan, b: Behaviours) -> list[Episode]:
    episodes = [*plan.other_episodes]
    for party in plan.parties:
        episodes.extend(_through_door(party, b, plan.rng_seed))
    return sorted(episodes, key=lambda e: e.at)


def _through_door(party: Party, b: Behaviours, seed: str) -> list[Episode]:
    """A party going in or out: one opening for all (groups), or one each, a few seconds apart."""
    rng = random.Random(f"{seed}:door:{party.direction}:{party.people[0]}")
    door_held = rng.uniform(3, 5)
    spacing = [rng.uniform(6, 12) for _ in party.people]
    habit = [rng.random() < 0.25 for _ in party.people]
    way, incoming = party.how, party.direction == "in"
    if way == "walk":  # the door is propped open: no opening of their own
        return [
            Episode(
                party.at + i,
                0.0,
                tap=incoming and habit[i],
                entering=(p,) if incoming else (),
                leaving=() if incoming else (p,),
                why="propped",
            )
            for i, p in enumerate(party.people)
        ]
    together = [party.people] if b.groups else [(p,) for p in party.people]
    out, at = [], party.at
    for people in together:
        n = len(people)
        out.append(
            Episode(
                at,
                door_held + (1.5 * (n - 1) if n > 1 else 0.0) + (3.0 if way == "key" else 0.0),
                tap=way == "tap",
                press=way == "button",
                inside=way in ("let_in", "button", "handle"),
                entering=people if incoming else (),
                leaving=() if incoming else people,
                why=party.why,
            )
        )
        at += spacing[len(out) - 1]
    return out


def _door_signals(episodes: list[Episode]) -> list[Signal]:
    signals, spans = [], []
    for e in episodes:
        if e.tap:
            signals.append(Signal(e.at - (2.0 if e.open_for else 1.0), "tap"))
        if e.press:
            signals.append(Signal(e.at - 1.0, "press"))
        spans.append((e.at, e.at + e.open_for))
    merged: list[list[float]] = []
    for a, z in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], z)
        elif z > a:
            merged.append([a, z])
    for a, z in merged:
        signals += [Signal(a, "open"), Signal(z, "close")]
    return signals


#: A two-beam counter at the door: a follower this close behind the one before is read with
#: them as one passage (the beams never clear between them), and now and then something that
#: is not a person (a bag swung through, a dog) is read as one.
CLOSE_BEHIND, FALSE_PASSAGES_A_DAY = 0.15, 1.0


def _beam_passages(episodes: list[Episode], rng: random.Random) -> list[Signal]:
    """What a two-beam people counter at the door reports: ``pass_in`` / ``pass_out``."""
    signals = []
    for e in episodes:
        for kind, people in (("pass_in", e.entering), ("pass_out", e.leaving)):
            for i, _ in enumerate(people):
                if i and rng.random() < CLOSE_BEHIND:
                    continue  # through on the heels of the one before: one passage for two
                signals.append(Signal(e.at + 0.5 + 1.5 * i, kind))
    for _ in range(rng.randint(0, round(2 * FALSE_PASSAGES_A_DAY))):
        signals.append(Signal(rng.uniform(7, 22) * 3600, rng.choice(("pass_in", "pass_out"))))
    return signals


def _movements(
    plan: Plan, segments: dict[str, list[Segment]], b: Behaviours, seed: int, kind: str
) -> dict[str, list[float]]:
    """When each room's PIR sees someone move: everyone's movements plus extras and false ones."""
    moves: dict[str, list[float]] = {room: [] for room in ROOMS}
    for person, segs in segments.items():
        for i, s in enumerate(segs):
            rng = random.Random(f"{seed}:{kind}:motion:{person}:{i}")
            moves[s.room] += segment_movements(s, b.still_sitters, rng)
    for room, t in plan.extra_movements:
        moves[room].append(t)
    if b.night_triggers:
        rng = random.Random(f"{seed}:{kind}:night")
        for room in ROOMS:
            for _ in range(rng.randint(0, 3)):
                late = rng.random() < 0.4
                hours = rng.uniform(22.5, 24) if late else rng.uniform(0, 6.5)
                moves[room].append(hours * 3600)
    return {room: sorted(ts) for room, ts in moves.items()}


def segment_movements(s: Segment, still_sitters: bool, rng: random.Random) -> list[float]:
    """When one person moves enough for the PIR during a segment (first: as it begins)."""
    moves, t = [], s.start
    while t < s.end:
        moves.append(t)
        t += _gap(s.activity, still_sitters, rng)
    return moves


def _gap(activity: str, still_sitters: bool, rng: random.Random) -> float:
    """Seconds until a person doing ``activity`` next moves enough for a ceiling PIR."""
    if activity == "active":
        return rng.uniform(5, 40)
    if activity == "meeting":
        return rng.uniform(60, 300)
    long_still, minutes = rng.random() < 0.15, rng.uniform(5, 20)
    if not still_sitters:
        return rng.expovariate(1 / 240)
    return rng.uniform(30, 45) * 60 if long_still else minutes * 60


def _co2(room: str, segments: dict[str, list[Segment]]) -> list[float]:
    """The room's true CO2 over the day from the breathing of the people in it."""
    lpm = [0.0] * (int(DAY / CO2_STEP) + 1)
    for segs in segments.values():
        for s in segs:
            if s.room != room:
                continue
            for k in range(int(s.start / CO2_STEP), min(int(s.end / CO2_STEP), len(lpm))):
                lpm[k] += CO2_LPM[s.activity]
    return co2_curve(
        AIR[room], lambda t: lpm[min(int(t / CO2_STEP), len(lpm) - 1)], OPEN_HOURS, CO2_STEP
    )
