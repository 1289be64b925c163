"""Scripted days at a simulated space, with the ground truth of who was there each minute.

Each person's visit becomes what the sensors would see: a tap and a door opening to come in
(or slipping in behind someone: tailgating), an exit press or a bare opening from inside to
leave (or leaving in the same opening as someone else: a forgotten exit), and PIR motion in
their room now and then while they are there. ``replay`` feeds a day to the estimator and
compares it with the truth minute by minute; the benchmark and the tests use it, and the
simulated site plays such days.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge.agent.occupancy import OccupancyEstimator, OccupancySettings
from hafen.acl import TimeWindow

ROOMS = ("coworking", "meeting")
#: Mean seconds between PIR triggers from one person sitting at a desk.
MOTION_EVERY = 240.0


@dataclass(frozen=True)
class Visit:
    arrive: float  # seconds since the day's midnight
    leave: float
    room: str
    tailgates: bool = False  # comes in behind someone else's tap
    let_in: bool = False  # someone inside opens the door for them: no tap
    exit: str = "button"  # "button", "handle" (no press) or "group" (in someone's opening)


@dataclass(frozen=True)
class Day:
    name: str
    start: datetime  # local midnight
    visits: list[Visit]
    people: int
    capacity: int = 60


@dataclass(frozen=True)
class Result:
    name: str
    people: int
    mae: float
    presence: float
    worst: int


def _clock(rng: random.Random, mean_h: float, sd_h: float, lo: float, hi: float) -> float:
    return min(max(rng.gauss(mean_h, sd_h), lo), hi) * 3600


def make_day(
    name: str,
    people: int,
    seed: int,
    tailgating: float = 0.0,
    handle: float = 0.02,
    group: float = 0.0,
    lunch: float = 0.3,
    let_in: float = 0.0,
) -> Day:
    """A weekday of ``people`` members: morning arrivals, some lunch trips, evening departures."""
    rng = random.Random(seed)
    visits = []
    for _ in range(people):
        arrive = _clock(rng, 9.5, 1.3, 7.2, 15)
        leave = max(arrive + 1800, _clock(rng, 17, 1.6, 11, 21.5))
        room = rng.choice(ROOMS) if rng.random() < 0.2 else ROOMS[0]
        spans = [(arrive, leave)]
        if rng.random() < lunch and arrive < 11.5 * 3600 and leave > 14 * 3600:
            out = _clock(rng, 12.3, 0.3, 11.6, 13)
            spans = [(arrive, out), (out + rng.uniform(1800, 3600), leave)]
        for a, b in spans:
            r = rng.random()
            how = "handle" if r < handle else "group" if r < handle + group else "button"
            visits.append(Visit(a, b, room, rng.random() < tailgating, rng.random() < let_in, how))
    start = datetime(2026, 3, 11, tzinfo=ZoneInfo("Europe/Berlin"))  # a Wednesday
    return Day(name, start, _couple(visits), people)


def _couple(visits: list[Visit]) -> list[Visit]:
    """Tie each tailgater to the tap entry they follow and each group leaver to the exit they
    share, so that the ground truth moves when the door does."""
    coupled, last_tap = [], None
    for v in sorted(visits, key=lambda v: v.arrive):
        if v.tailgates and last_tap is not None and v.arrive - last_tap < 600:
            v = replace(v, arrive=last_tap + 3, let_in=False)
        elif v.let_in:
            v = replace(v, tailgates=False)
        else:
            v, last_tap = replace(v, tailgates=False), v.arrive
        coupled.append(v)
    result, last_exit = [], None
    for v in sorted(coupled, key=lambda v: v.leave):
        if v.exit == "group" and last_exit is not None and v.leave - last_exit < 900:
            v = replace(v, leave=max(last_exit + 2, v.arrive + 60))
        else:
            v = replace(v, exit="handle" if v.exit == "group" else v.exit)
            last_exit = v.leave
        result.append(v)
    return sorted(result, key=lambda v: v.arrive)


def scripted_days() -> list[Day]:
    return [
        make_day("quiet day (6 people)", 6, seed=1),
        make_day("busy day (40 people)", 40, seed=2, tailgating=0.03, handle=0.1, group=0.05),
        make_day(
            "tailgating and forgotten exits (30 people)",
            30,
            seed=3,
            tailgating=0.15,
            handle=0.2,
            group=0.15,
            let_in=0.05,
        ),
    ]


def sensor_events(day: Day, rng: random.Random) -> list[tuple[float, str, str | None]]:
    """What the door and PIRs report, as (second of day, kind, room) in time order."""
    events: list[tuple[float, str, str | None]] = []
    for v in day.visits:
        if v.tailgates:
            continue  # slips in through the opening of the tap before (held 6 s longer)
        followers = sum(1 for w in day.visits if w.tailgates and w.arrive == v.arrive + 3)
        if not v.let_in:
            events.append((v.arrive - 2, "tap", None))
        events.append((v.arrive, "open", None))
        events.append((v.arrive + rng.uniform(3, 5) + 6 * followers, "close", None))
    for v in day.visits:
        if v.exit == "group":
            continue  # walks out in the opening of the one before
        followers = sum(1 for w in day.visits if w.exit == "group" and w.leave == v.leave + 2)
        if v.exit == "button":
            events.append((v.leave - 1, "press", None))
        events.append((v.leave, "open", None))
        events.append((v.leave + rng.uniform(3, 5) + 3 * followers, "close", None))
    for v in day.visits:
        t = v.arrive + 20
        while t < v.leave - 30:
            events.append((t, "motion", v.room))
            t += rng.expovariate(1 / MOTION_EVERY)
        events.append((v.leave - 30, "motion", v.room))  # packing up and walking out
    return sorted(events, key=lambda e: e[0])


def truth(day: Day, second: float) -> int:
    """People inside at ``second``."""
    return sum(1 for v in day.visits if v.arrive <= second < v.leave)


def replay(day: Day, settings: OccupancySettings | None = None, seed: int = 0) -> Result:
    if settings is None:
        assert isinstance(day.start.tzinfo, ZoneInfo)  # make_day's days start in Europe/Berlin
        settings = OccupancySettings(
            capacity=day.capacity,
            rooms=ROOMS,
            opening_hours=(TimeWindow(days=[0, 1, 2, 3, 4], start="07:00", end="22:00"),),
            timezone=day.start.tzinfo,
        )
    estimator = OccupancyEstimator(settings)
    events = sensor_events(day, random.Random(seed))
    # The scripted PIRs give ideal pulses: each motion's line falls two seconds later.
    events = sorted(
        events + [(t + 2.0, "still", room) for t, kind, room in events if kind == "motion"],
        key=lambda e: e[0],
    )
    feed = {
        "tap": lambda t, _: estimator.tap_allowed(t),
        "press": lambda t, _: estimator.exit_pressed(t),
        "open": lambda t, _: estimator.door_opened(t),
        "close": lambda t, _: estimator.door_closed(t),
        "motion": lambda t, room: estimator.motion(room, t),
        "still": lambda t, room: estimator.motion_ended(room, t),
    }
    errors, right, i = [], 0, 0
    for minute in range(24 * 60):
        now = day.start + timedelta(minutes=minute)
        while i < len(events) and day.start + timedelta(seconds=events[i][0]) <= now:
            second, kind, room = events[i]
            feed[kind](day.start + timedelta(seconds=second), room)
            i += 1
        estimator.tick(now)
        estimate, actual = estimator.estimate(now), truth(day, minute * 60)
        errors.append(abs(estimate.count - actual))
        right += estimate.present == (actual > 0)
    return Result(day.name, day.people, sum(errors) / len(errors), right / len(errors), max(errors))
