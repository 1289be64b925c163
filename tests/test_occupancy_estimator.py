"""The occupancy estimator against scripted moments and days with known ground truth."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.agent.occupancy import OccupancyEstimator, OccupancySettings
from hafen.acl import TimeWindow
from sim.occupancy_script import make_day, replay, scripted_days
from tests.support.waiting import wait_for

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 11, 9, 0, tzinfo=TZ)  # a Wednesday morning


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def estimator(**settings) -> OccupancyEstimator:
    base = {"capacity": 10, "rooms": ("coworking",), "timezone": TZ}
    return OccupancyEstimator(OccupancySettings(**{**base, **settings}))


def enter(e: OccupancyEstimator, t: float, open_for: float = 4) -> None:
    e.tap_allowed(at(t))
    e.door_opened(at(t + 2))
    e.door_closed(at(t + 2 + open_for))


def leave(e: OccupancyEstimator, t: float, button: bool = True, open_for: float = 4) -> None:
    if button:
        e.exit_pressed(at(t))
    e.door_opened(at(t + 1))
    e.door_closed(at(t + 1 + open_for))


def test_taps_and_presses_paired_with_openings_count_people_in_and_out():
    e = estimator()
    enter(e, 0)
    enter(e, 60)
    assert e.estimate(at(70)).count == 2
    leave(e, 120)
    estimate = e.estimate(at(130))
    assert (estimate.count, estimate.confidence, estimate.uncertain) == (1, 1.0, 0)
    e.tap_allowed(at(200))  # tapped, then changed their mind: the door never opened
    leave(e, 300)
    assert e.estimate(at(310)).count == 0


def test_the_count_stays_between_zero_and_capacity():
    e = estimator(capacity=2)
    for t in (0, 30, 60):
        enter(e, t)
    assert e.estimate(at(100)).count == 2
    for t in (200, 230, 260):
        leave(e, t)
    assert e.estimate(at(300)).count == 0


def test_tailgating_counts_the_follower_and_lowers_the_confidence():
    e = estimator()
    enter(e, 0, open_for=11)  # one tap, the door held while a second person slips in
    estimate = e.estimate(at(20))
    assert (estimate.count, estimate.uncertain, estimate.confidence) == (2, 1, 0.8)
    e = estimator(count_followers=False)
    enter(e, 0, open_for=11)
    assert (e.count, e.uncertain) == (1, 1)


def test_a_forgotten_exit_button_is_guessed_as_an_exit_and_marked_uncertain():
    e = estimator()
    enter(e, 0)
    enter(e, 30)
    leave(e, 600, button=False)  # the handle from inside, no press
    estimate = e.estimate(at(610))
    assert (estimate.count, estimate.uncertain) == (1, 1)


def test_motion_finds_someone_the_door_missed_but_not_the_last_ones_leaving():
    e = estimator()
    enter(e, 0)
    e.motion("coworking", at(500))
    leave(e, 600)
    e.motion("coworking", at(620))  # still walking out: inside the grace after the door
    estimate = e.estimate(at(630))
    assert (estimate.count, estimate.present, estimate.rooms) == (0, False, {"coworking": False})
    e.motion("coworking", at(1200))  # someone the door never saw (let in from inside)
    estimate = e.estimate(at(1210))
    assert (estimate.count, estimate.present, estimate.uncertain) == (1, True, 1)
    assert estimate.rooms == {"coworking": True}


def test_no_motion_for_a_while_means_nobody_is_there():
    e = estimator(empty_after=timedelta(minutes=20))
    enter(e, 0)
    enter(e, 10)
    e.motion("coworking", at(60))
    assert e.tick(at(60 + 19 * 60), at(60 + 18 * 60)) is None
    assert e.tick(at(60 + 20 * 60), at(60 + 19 * 60)) == "no_motion"
    assert e.estimate(at(60 + 20 * 60)).count == 0
    assert e.estimate(at(60 + 20 * 60)).confidence == 1.0


def test_closing_time_resets_the_count_in_the_sites_own_time():
    hours = (TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start="07:00", end="22:00"),)
    e = estimator(opening_hours=hours, rooms=())  # no PIR: only closing time corrects
    enter(e, 0)
    before = datetime(2026, 3, 11, 21, 59, tzinfo=TZ)
    assert e.tick(before, before - timedelta(minutes=1)) is None
    assert e.count == 1
    closing = datetime(2026, 3, 11, 21, 0, tzinfo=ZoneInfo("UTC"))  # 22:00 in Berlin
    assert e.tick(closing, before) == "closing_time"
    assert e.count == 0


@pytest.mark.parametrize("day", scripted_days()[:2], ids=["quiet", "busy"])
def test_quiet_and_busy_days_are_counted_within_a_person(day):
    result = replay(day)
    assert result.mae <= 1.0, result
    assert result.presence >= 0.98, result


def test_a_messy_day_errs_more_but_never_gets_presence_wrong_for_long():
    day = make_day("messy", 30, seed=5, tailgating=0.2, handle=0.3, group=0.2, let_in=0.1)
    result = replay(day)
    door_only = replay(day, OccupancySettings(capacity=60, timezone=TZ))
    assert result.presence >= 0.97, result
    assert result.presence > door_only.presence or result.mae < door_only.mae


def test_a_pir_held_on_by_a_busy_room_keeps_the_count(tmp_path):
    """gpiozero's motion is the PIR's switch-on; a busy room holds the output raised, and the
    "nobody moved for 20 minutes" rule once zeroed a count of 15 with 43 people inside."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from edge.agent.config import OccupancyConfig
    from edge.agent.occupancy_service import OccupancyService

    Device.pin_factory = MockFactory()
    cfg = OccupancyConfig.model_validate({"rooms": [{"name": "coworking", "pin": 5}]})
    queued: list[object] = []
    service = OccupancyService(cfg, TZ, queued.append, lambda _event: None)
    service.start()
    try:
        for t in (0, 30, 60):
            service.tap_allowed(at(t))
            service.door("opened", at(t + 2))
            service.door("closed", at(t + 6))
        pir = Device.pin_factory.pin(5)
        pir.drive_high()  # switched on once, and held on
        held = service._motion
        assert held is not None and wait_for(lambda: held.moving()["coworking"], 2)
        for item in queued:
            service.handle(item, at(70))
        for minute in range(1, 41):
            service.tick(at(70 + minute * 60))
        assert service.estimator.count == 3
        pir.drive_low()  # the room empties (without the door: the estimator's own rule)
        assert wait_for(lambda: not held.moving()["coworking"], 2)
        assert any(
            (s := service.tick(at(70 + m * 60))) and s.cause == "no_motion" for m in range(41, 70)
        )
    finally:
        service.stop()
