"""The occupancy service between the config and the estimator: the settings it builds, where
the count starts, CO2 given to the estimator by the sensor's room, and PIR lines read when no
edge said so. Inputs are handed in as the agent's loop would, with times of the test's own."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.agent.occupancy_config import OccupancyConfig
from edge.agent.occupancy_service import Co2Reading, Motion, OccupancyService, settings_for
from edge.agent.room_air import RoomAir
from sim.door import mock_pin
from tests.support.air import breathed
from tests.support.waiting import wait_for

BERLIN = ZoneInfo("Europe/Berlin")
#: Wednesday 11 March 2026, 10:00 in Berlin.
MORNING = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}


def config(**keys) -> OccupancyConfig:
    return OccupancyConfig.model_validate(keys)


def service(cfg: OccupancyConfig, started: datetime | None = None) -> OccupancyService:
    return OccupancyService(cfg, BERLIN, lambda _item: None, lambda _event: None, started=started)


def test_the_settings_come_from_the_config():
    cfg = config(
        capacity=20,
        rooms=[
            {"name": "coworking", "pin": 5, "volume_m3": 150, "air_changes_per_hour_closed": 0.3},
            {"name": "meeting", "pin": 6, "volume_m3": 40},  # no sensor: not in the air
        ],
        co2=[{"port": "/dev/null", "model": "s8", "room": "coworking"}],
        counter={"outer": {"pin": 13}, "inner": {"pin": 19}},
        pir_hold_seconds=10,
        litres_per_person_minute=0.4,
        opening_hours=[WEEKDAYS],
    )
    settings = settings_for(cfg, BERLIN)
    assert settings.capacity == 20 and settings.rooms == ("coworking", "meeting")
    assert settings.air == (("coworking", RoomAir(150, 2.0, 0.3)),)
    assert settings.counter is True
    assert (settings.pir_hold_seconds, settings.litres_per_person_minute) == (10, 0.4)
    assert len(settings.opening_hours) == 1 and settings.timezone == BERLIN
    assert settings_for(config(), BERLIN).counter is False


def test_an_agent_started_while_open_does_not_claim_the_space_empty():
    """It may have restarted mid-day with people inside: the count starts unknown, so that
    what the PIRs and the air say can still find them."""
    cfg = config(capacity=20, opening_hours=[WEEKDAYS])
    during = service(cfg, started=MORNING).estimator.estimate(MORNING)
    assert during.low == 0 and during.high >= 3 and during.confidence < 0.8
    night = MORNING.replace(hour=22)
    after_hours = service(cfg, started=night).estimator.estimate(night)
    assert (after_hours.count, after_hours.high) == (0, 0) and after_hours.confidence < 1.0
    replay = service(cfg).estimator.estimate(MORNING)  # a replay from before opening
    assert (replay.count, replay.high, replay.confidence) == (0, 0, 1.0)


def counted_with_air(room: str | None, people: int) -> tuple[int, int, int]:
    """The count and its interval after ``people`` came in on one tap (the door held open
    twelve seconds, so one to three) and breathed for 45 minutes, someone moving now and then;
    the sensor names ``room``."""
    cfg = config(
        capacity=20,
        rooms=[{"name": "coworking", "pin": 5, "volume_m3": 100}],
        co2=[{"name": "air", "port": "/dev/null", "model": "s8", "room": room}],
    )
    occupancy = service(cfg)
    rng = random.Random(7)
    at = MORNING
    for ppm in breathed(0, 100, 30, rng):  # the empty room: the air's outdoor level
        occupancy.handle(Co2Reading("air", ppm, None), at)
        occupancy.tick(at)
        at += timedelta(seconds=30)
    occupancy.tap_allowed(at)
    occupancy.door("opened", at)
    occupancy.door("closed", at + timedelta(seconds=12))
    for step, ppm in enumerate(breathed(people, 100, 45, rng)):
        at += timedelta(seconds=30)
        if step % 12 == 0:  # someone moves every six minutes, as people at desks do
            occupancy.handle(Motion("coworking"), at)
            occupancy.handle(Motion("coworking", raised=False), at + timedelta(seconds=5))
        occupancy.handle(Co2Reading("air", ppm, None), at)
        occupancy.tick(at)
    estimate = occupancy.estimator.estimate(at)
    assert occupancy.co2 == {"air": ppm}  # shown either way
    return estimate.low, estimate.count, estimate.high


def test_a_sensors_readings_count_people_in_the_room_it_names():
    # The door held open twelve seconds says "two or three"; the PIR cannot tell one person
    # moving often from three moving now and then: without the air, three stay possible.
    for people in (1, 3):
        low, _, high = counted_with_air(None, people)
        assert low <= 3 <= high, (people, low, high)
    # The air can: in the room the sensor names, it finds them.
    low, count, high = counted_with_air("coworking", 3)
    assert count == 3 and low >= 2, (low, count, high)
    low, count, high = counted_with_air("coworking", 1)
    assert count == 1 and high <= 2, (low, count, high)


def test_a_pir_line_whose_edge_was_never_heard_is_read(mock_pins):
    """A line high before gpiozero's first sample (a busy room as the agent starts) brings no
    rise; here the rise is lost on the way (the queue drops it): either way, the line is read
    on the next tick, and held for ten minutes it says someone is there."""
    cfg = config(capacity=20, rooms=[{"name": "coworking", "pin": 5}])
    occupancy = service(cfg, started=MORNING)
    occupancy.start()
    try:
        motion = occupancy._motion
        assert motion is not None
        mock_pin(5).drive_high()
        assert wait_for(lambda: motion.moving()["coworking"], 2)
        for minute in range(0, 11):
            occupancy.tick(MORNING + timedelta(minutes=minute))
        estimate = occupancy.estimator.estimate(MORNING + timedelta(minutes=10))
        assert estimate.present and estimate.rooms == {"coworking": True}
        assert estimate.low >= 1  # a line held for ten minutes: someone is surely there
    finally:
        occupancy.stop()


def test_a_counter_pin_that_cannot_be_had_gives_the_pirs_back(mock_pins):
    from gpiozero import DigitalInputDevice
    from gpiozero.exc import GPIOPinInUse

    cfg = config(
        rooms=[{"name": "coworking", "pin": 5}],
        counter={"outer": {"pin": 13}, "inner": {"pin": 19}},
    )
    squatter = DigitalInputDevice(19)  # another program holds the inner beam's pin
    try:
        with pytest.raises(GPIOPinInUse):
            service(cfg, started=MORNING).start()
        DigitalInputDevice(5).close()  # the room's PIR was given back
        DigitalInputDevice(13).close()  # and the outer beam
    finally:
        squatter.close()
