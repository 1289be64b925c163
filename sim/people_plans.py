"""Who comes to the space on a simulated day, when, with whom, and how they use the door.

``plan_day`` draws a day of one kind (quiet, typical, event, still) from its seed: members with
their arrival and departure, lunch trips, guests, couriers, a cleaner, an evening event. Each
person's stay is a function from (arrival, departure) to ``Segment``\\s, because the door decides
the exact second they go through. Every draw comes from a stream named after what it decides,
so that a behaviour switched off leaves all other draws unchanged. ``sim.people_days`` turns a
plan into the door's episodes, the sensors' signals and the truth.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

H = 3600.0
MIN = 60.0


@dataclass(frozen=True)
class Behaviours:
    """What people (and sensors) do that makes counting hard; each can be switched off."""

    #: A seated person moves enough for a ceiling PIR only every 5-20 min, sometimes 30-45.
    #: Off: every 4 min on average.
    still_sitters: bool = True
    #: People who come (or leave) together go through on one tap (one opening). Off: each taps.
    groups: bool = True
    #: The door opened from inside with nobody leaving: couriers, parcels, guests let in.
    #: Off: no couriers, and guests tap a visitor card.
    inside_openings: bool = True
    #: The door propped open while an event's guests arrive and leave. Off: each party taps.
    propped_door: bool = True
    #: A cleaner with a key, outside opening hours, no tap. Off: no cleaner.
    cleaners: bool = True
    #: Some stay past closing time. Off: they leave before it.
    late_stays: bool = True
    #: PIRs trigger now and then at night with nobody there (heating, insects, light).
    night_triggers: bool = True
    #: A PIR's output stays high while movement keeps retriggering it (a busy room: one
    #: switch-on for hours). Off: each movement gives its own short pulse.
    pir_held_on: bool = True
    #: Some leave by the handle without pressing the exit button. Off: everyone presses it.
    handle_exits: bool = True


@dataclass(frozen=True)
class Episode:
    """One use of the door."""

    at: float
    open_for: float  # 0: walked through a door already propped open
    tap: bool = False
    press: bool = False
    inside: bool = False  # opened from inside
    entering: tuple[str, ...] = ()
    leaving: tuple[str, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Segment:
    """A stretch of one person's stay: where they are and what they do."""

    start: float
    end: float
    room: str
    activity: str  # "seated", "meeting" or "active"


Stay = Callable[[float, float], list[Segment]]


@dataclass(frozen=True)
class Party:
    """People going through the door together, in (``tap``, ``let_in``, ``key``, ``walk``) or
    out (``button``, ``handle``, ``walk``)."""

    at: float
    people: tuple[str, ...]
    direction: str
    how: str
    why: str


@dataclass
class Visit:
    person: str
    role: str
    arrive: float
    leave: float
    how_in: str
    how_out: str
    stay: Stay
    join_in: bool = False  # comes with the party before
    join_out: bool = False  # leaves with the party before


@dataclass
class Plan:
    rng_seed: str
    visits: list[Visit] = field(default_factory=list)
    other_episodes: list[Episode] = field(default_factory=list)
    extra_movements: list[tuple[str, float]] = field(default_factory=list)

    def rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.rng_seed}:{stream}")

    @property
    def roles(self) -> dict[str, str]:
        return {v.person: v.role for v in self.visits}

    @property
    def stays(self) -> dict[str, Stay]:
        return {v.person: v.stay for v in self.visits}

    @property
    def parties(self) -> list[Party]:
        return _parties(self.visits, "in") + _parties(self.visits, "out")

    def present(self, t: float) -> bool:
        return any(v.arrive + 60 < t < v.leave - 60 for v in self.visits if v.role != "cleaner")


def _parties(visits: list[Visit], direction: str) -> list[Party]:
    """Group those who come (leave) with the party before: up to 4 (5) within 10 (15) minutes."""
    incoming = direction == "in"
    parties: list[list[Visit]] = []
    times: list[float] = []
    for v in sorted(visits, key=lambda v: v.arrive if incoming else v.leave):
        t, how = (v.arrive, v.how_in) if incoming else (v.leave, v.how_out)
        joins = v.join_in if incoming else v.join_out
        if joins and parties:
            last = parties[-1]
            same = (last[0].how_in if incoming else last[0].how_out) == how
            near = t - times[-1] <= (10 if incoming else 15) * MIN
            room = len(last) < (4 if incoming else 5)
            if same and near and room and (incoming or times[-1] > v.arrive + 10 * MIN):
                last.append(v)
                continue
        parties.append([v])
        times.append(t)
    return [
        Party(
            t,
            tuple(v.person for v in party),
            direction,
            party[0].how_in if incoming else party[0].how_out,
            party[0].role,
        )
        for t, party in zip(times, parties, strict=True)
    ]


def _clock(rng: random.Random, mean_h: float, sd_h: float, lo_h: float, hi_h: float) -> float:
    return min(max(rng.gauss(mean_h, sd_h), lo_h), hi_h) * H


# -- stays: what a person does between the door and the door ----------------------------------
def desk_stay(rng: random.Random, still: bool, meetings: float) -> Stay:
    """Settle in, work at a desk in blocks with breaks, now and then a meeting, pack up."""
    draws = [
        (rng.random() < meetings, rng.uniform(30, 90), rng.uniform(45, 150), rng.uniform(3, 10))
        for _ in range(12)
    ]
    settle = rng.uniform(1, 3) * MIN

    def stay(arrive: float, leave: float) -> list[Segment]:
        end_work = leave - 60
        segs = [Segment(arrive, min(arrive + settle, end_work), "coworking", "active")]
        t = segs[0].end
        for meeting, meet_min, block_min, break_min in draws:
            if t >= end_work:
                break
            if meeting and not still:
                block = Segment(t, min(t + meet_min * MIN, end_work), "meeting", "meeting")
            else:
                length = block_min * (2.0 if still else 1.0) * MIN
                block = Segment(t, min(t + length, end_work), "coworking", "seated")
            pause = break_min * (0.5 if still else 1.0) * MIN
            rest = Segment(block.end, min(block.end + pause, end_work), "coworking", "active")
            segs += [block, rest]
            t = segs[-1].end
        if t < end_work:
            segs.append(Segment(t, end_work, "coworking", "seated"))
        segs.append(Segment(max(end_work, arrive), leave, "coworking", "active"))
        return [s for s in segs if s.end > s.start]

    return stay


def meeting_stay(arrive: float, leave: float) -> list[Segment]:
    """A guest: in and out through the coworking room, talking in the meeting room."""
    walk = min(60.0, (leave - arrive) / 4)
    return [
        Segment(arrive, arrive + walk, "coworking", "active"),
        Segment(arrive + walk, leave - walk, "meeting", "meeting"),
        Segment(leave - walk, leave, "coworking", "active"),
    ]


def cleaning_stay(arrive: float, leave: float) -> list[Segment]:
    """Two thirds of the time in the big room, the rest in the meeting room, always moving."""
    split = arrive + (leave - arrive) * 2 / 3
    return [
        Segment(arrive, split, "coworking", "active"),
        Segment(split, leave, "meeting", "active"),
    ]


def event_stay(talk: tuple[float, float]) -> Stay:
    """Mingle until the talk, sit through it, mingle again until leaving."""

    def stay(arrive: float, leave: float) -> list[Segment]:
        a, z = min(max(talk[0], arrive + 60), leave), min(max(talk[1], arrive + 60), leave)
        segs = [
            Segment(arrive, a, "coworking", "active"),
            Segment(a, z, "coworking", "seated"),
            Segment(z, leave, "coworking", "active"),
        ]
        return [s for s in segs if s.end > s.start]

    return stay
