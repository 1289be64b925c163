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


@dataclass(frozen=True)
class Minute:
    truth: int
    count: int
    present: bool
    confidence: float
    low: int
    high: int


def settings_for(world: World, capacity: int = 60) -> OccupancySettings:
    """The space's occupancy config: both rooms' PIRs, weekday opening hours, Berlin time."""
    hours = [f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}" for s in OPEN_HOURS]
    tz = world.start.tzinfo
    assert tz is not None
    return OccupancySettings(
        capacity=capacity,
        rooms=ROOMS,
        opening_hours=(TimeWindow(days=[0, 1, 2, 3, 4], start=hours[0], end=hours[1]),),
        timezone=tz,  # type: ignore[arg-type]
        air=tuple((room, RoomAir(a.volume, a.ach_day, a.ach_night)) for room, a in AIR.items()),
    )


def replay_world(world: World, settings: OccupancySettings | None = None) -> list[Minute]:
    """Feed the day's signals in time order; read the estimate at each minute beside the truth."""
    estimator = OccupancyEstimator(settings or settings_for(world))
    signals = world.signals
    minutes, i = [], 0
    for minute in range(24 * 60):
        now = world.start + timedelta(minutes=minute)
        while i < len(signals) and signals[i].at <= minute * 60:
            s = signals[i]
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
            i += 1
        estimator.tick(now)
        e = estimator.estimate(now)
        truth = world.inside(minute * 60)
        minutes.append(Minute(truth, e.count, e.present, e.confidence, e.low, e.high))
    return minutes
