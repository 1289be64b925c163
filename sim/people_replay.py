"""A simulated day (``sim.people_days``) played to the occupancy estimator, scored per minute.

This is the only place where the simulated world meets the estimator, and it meets it through
the estimator's public inputs, as the agent does: an allowed tap, an exit press, the door opened
and closed, each PIR's rise and fall, each CO2 reading, and a tick every minute. The estimator
is told each room's volume and ventilation as a site's config would tell it (``settings_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from edge.agent.occupancy import OccupancyEstimator, OccupancySettings
from edge.agent.room_air import RoomAir
from hafen.acl import TimeWindow
from sim.people_days import AIR, OPEN_HOURS, ROOMS, World

#: What a site may have, and the signals each gives: the door (always), PIRs, CO2 sensors
#: with the rooms' air set, a people counter at the door.
SIGNALS = {
    "door": ("tap", "press", "open", "close"),
    "pir": ("pir_on", "pir_off"),
    "co2": ("co2",),
    "counter": ("pass_in", "pass_out"),
}
WITHOUT_COUNTER = frozenset({"door", "pir", "co2"})


@dataclass(frozen=True)
class Minute:
    truth: int
    count: int
    present: bool
    confidence: float
    low: int
    high: int


def settings_for(
    world: World,
    capacity: int = 60,
    signals: frozenset[str] = WITHOUT_COUNTER,
    air_set: tuple[float, float] = (1.0, 1.0),
) -> OccupancySettings:
    """The space's occupancy config for the ``signals`` it has: both rooms' PIRs, both rooms'
    air (volume, air changes: as built, or set off by the factors ``air_set``), a counter;
    weekday opening hours, Berlin time."""
    volume, changes = air_set
    hours = [f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}" for s in OPEN_HOURS]
    tz = world.start.tzinfo
    assert tz is not None
    return OccupancySettings(
        capacity=capacity,
        opening_hours=(TimeWindow(days=[0, 1, 2, 3, 4], start=hours[0], end=hours[1]),),
        timezone=tz,  # type: ignore[arg-type]
        rooms=ROOMS if "pir" in signals else (),
        air=tuple(
            (room, RoomAir(a.volume * volume, a.ach_day * changes, a.ach_night * changes))
            for room, a in AIR.items()
        )
        if "co2" in signals
        else (),
        counter="counter" in signals,
    )


def replay_world(
    world: World,
    signals: frozenset[str] = WITHOUT_COUNTER,
    capacity: int = 60,
    air_set: tuple[float, float] = (1.0, 1.0),
) -> list[Minute]:
    """Feed the day's signals of the kinds in ``signals`` (see ``SIGNALS``) in time order; read
    the estimate at each minute beside the truth."""
    estimator = OccupancyEstimator(settings_for(world, capacity, signals, air_set))
    kinds = {kind for name in signals for kind in SIGNALS[name]}
    day = [s for s in world.signals if s.kind in kinds]
    minutes, i = [], 0
    for minute in range(24 * 60):
        now = world.start + timedelta(minutes=minute)
        while i < len(day) and day[i].at <= minute * 60:
            s = day[i]
            at = world.start + timedelta(seconds=s.at)
            if s.kind == "tap":
                estimator.tap_allowed(at)
            elif s.kind == "press":
                estimator.exit_pressed(at)
            elif s.kind == "open":
                estimator.door_opened(at)
            elif s.kind == "close":
                estimator.door_closed(at)
            elif s.kind == "pir_on" and s.room is not None:
                estimator.motion(s.room, at)
            elif s.kind == "pir_off" and s.room is not None:
                estimator.motion_ended(s.room, at)
            elif s.kind == "co2" and s.room is not None:
                estimator.co2(s.room, s.ppm, at)
            elif s.kind in ("pass_in", "pass_out"):
                estimator.passage(s.kind.removeprefix("pass_"), at)
            i += 1
        estimator.tick(now)
        e = estimator.estimate(now)
        truth = world.inside(minute * 60)
        minutes.append(Minute(truth, e.count, e.present, e.confidence, e.low, e.high))
    return minutes
