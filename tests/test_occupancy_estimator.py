"""The occupancy estimator on moments a site really has: what the door, the PIRs, the air and
a people counter say, and what the headcount, its 90 % interval, the confidence and presence
make of it. Inputs are handed in as the agent's loop would, with times of the test's own."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge.agent.headcount import CountBelief
from edge.agent.occupancy import Estimate, OccupancyEstimator, OccupancySettings
from edge.agent.room_air import RoomAir
from hafen.acl import TimeWindow
from tests.support.air import breathed

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 11, 9, 0, tzinfo=TZ)  # a Wednesday morning
HOUR = 3600
WEEKDAYS = (TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start="07:00", end="22:00"),)
ROOM = "coworking"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def estimator(**settings) -> OccupancyEstimator:
    base = {"capacity": 10, "rooms": (ROOM,), "timezone": TZ}
    return OccupancyEstimator(OccupancySettings(**{**base, **settings}))


def started_unknown(empty: float, **settings) -> OccupancyEstimator:
    """An estimator as the agent starts it: nobody knows who is inside (``empty``: how likely
    nobody is; the service's start)."""
    e = estimator(**settings)
    e.belief = CountBelief.unknown(e.settings.most, empty=empty)
    return e


def enter(e: OccupancyEstimator, t: float, open_for: float = 4) -> None:
    e.tap_allowed(at(t))
    e.door_opened(at(t + 2))
    e.door_closed(at(t + 2 + open_for))


def leave(e: OccupancyEstimator, t: float, button: bool = True, open_for: float = 4) -> None:
    if button:
        e.exit_pressed(at(t))
    e.door_opened(at(t + 1))
    e.door_closed(at(t + 1 + open_for))


def moved(e: OccupancyEstimator, t: float, room: str = ROOM) -> None:
    """Someone moved for the room's PIR: its line rises and falls after its hold."""
    e.motion(room, at(t))
    e.motion_ended(room, at(t + 30))


def minutes(e: OccupancyEstimator, start: float, count: int) -> Iterable[tuple[float, Estimate]]:
    """Tick each minute after ``start`` for ``count`` minutes; yields (second, estimate)."""
    for minute in range(1, count + 1):
        t = start + minute * 60
        e.tick(at(t))
        yield t, e.estimate(at(t))


def pass_minutes(e: OccupancyEstimator, start: float, count: int) -> Estimate:
    """Tick each minute after ``start`` for ``count`` minutes; the estimate at the end."""
    *_, (_, last) = minutes(e, start, count)
    return last


# -- the door -------------------------------------------------------------------------------
def test_taps_and_presses_paired_with_openings_count_people_in_and_out():
    e = estimator()
    enter(e, 0)
    enter(e, 60)
    two = e.estimate(at(70))
    assert (two.count, two.low, two.high, two.present) == (2, 2, 2, True)
    assert two.confidence > 0.99
    leave(e, 120)
    one = e.estimate(at(130))
    assert (one.count, one.low) == (1, 1) and one.high <= 3 and one.confidence > 0.9
    e.tap_allowed(at(200))  # tapped, then changed their mind: the door never opened
    leave(e, 300)  # the tap is long gone: this opening is the press's
    gone = e.estimate(at(310))
    assert (gone.count, gone.low, gone.present) == (0, 0, False), gone
    assert gone.confidence > 0.85


def test_a_crowd_beyond_the_capacity_is_counted_in_and_out():
    e = estimator(capacity=2)
    for t in (0, 30, 60):
        enter(e, t)
    assert e.estimate(at(100)).count == 3  # a crowd beyond the desks is still counted
    for t in (200, 230, 260):
        leave(e, t)
    estimate = e.estimate(at(300))
    assert (estimate.count, estimate.low, estimate.present) == (0, 0, False)


def test_a_group_on_one_tap_is_left_open_until_the_air_tells_how_many():
    """One tap, the door held twelve seconds: one person chatting in the doorway, or a group.
    The belief keeps both; the air in the room decides within half an hour."""
    for people in (1, 3):
        e = estimator(rooms=(), air=((ROOM, RoomAir(100)),))
        rng, t = random.Random(people), 0.0
        for ppm in breathed(0, 100, 30, rng):  # the empty room: the air's outdoor level
            e.co2(ROOM, ppm, at(t))
            e.tick(at(t))
            t += 30
        enter(e, t, open_for=12)
        after_door = e.estimate(at(t + 20))
        assert after_door.low <= 1 and after_door.high >= 3, after_door
        assert after_door.confidence < 0.8
        for ppm in breathed(people, 100, 30, rng):
            t += 30
            e.co2(ROOM, ppm, at(t))
            e.tick(at(t))
        settled = e.estimate(at(t))
        assert settled.count == people, (people, settled)
        assert people - 1 <= settled.low and settled.high <= people + 1
        assert settled.confidence > 0.95


def test_an_opening_from_inside_stays_open_to_every_reading_until_exits_use_the_people_up():
    """The handle from inside with no press: one out, a visitor let in, or nobody through.
    Three people, then such an opening: two, three and four all stay possible. When a fourth
    person presses the button to leave, the opening must have let someone in."""
    e = estimator(rooms=())
    for t in (0, 30, 60):
        enter(e, t)
    leave(e, 600, button=False)
    open_question = e.estimate(at(610))
    assert open_question.low <= 2 and open_question.high >= 4, open_question
    assert open_question.confidence < 0.8 and open_question.uncertain == 1
    for k in range(3):
        leave(e, 900 + 300 * k)
    assert e.estimate(at(1600)).present  # three out: the visitor may still be in
    leave(e, 1800)
    used_up = e.estimate(at(1810))
    assert (used_up.count, used_up.low, used_up.present) == (0, 0, False), used_up


def test_after_a_bare_opening_the_pirs_decide_whether_anyone_is_left():
    """One person in; later the door opens from inside without a press (they left by the
    handle, or let someone in). Silence empties the space; movement keeps it occupied."""
    for moving in (False, True):
        e = estimator()
        enter(e, 0)
        moved(e, 30)
        leave(e, 600, button=False)
        assert e.estimate(at(610)).low == 0  # nobody may be left
        assert e.estimate(at(610)).high >= 2  # or a visitor came in
        for t in range(600, 600 + 30 * 60, 60):
            if moving and (t - 600) % 360 == 300:
                moved(e, t)
            e.tick(at(t + 60))
        estimate = e.estimate(at(600 + 30 * 60))
        if moving:
            assert estimate.present and estimate.low >= 1, estimate
        else:
            assert (estimate.count, estimate.present) == (0, False), estimate
            assert estimate.confidence > 0.95


def test_an_exit_press_nobody_was_inside_to_make_says_someone_was():
    """The agent started in the night and believes the space empty. At five past seven
    someone presses the exit button and leaves: whoever stayed (a cleaner, a late worker)
    was missed, and others may have been too. The silence after settles it."""
    e = started_unknown(0.97, capacity=20, opening_hours=WEEKDAYS)
    before = -2 * HOUR + 5 * 60  # 07:05
    e.tick(at(before - 60))
    assert not e.estimate(at(before - 60)).present
    leave(e, before)
    assert e.estimate(at(before + 10)).present
    assert pass_minutes(e, before + 10, 30).present is False


def test_a_cleaner_with_a_key_is_counted_in_and_out():
    e = estimator(rooms=())
    e.door_opened(at(0))  # no tap, no press, nobody inside: a key from outside
    e.door_closed(at(4))
    assert (e.estimate(at(10)).count, e.estimate(at(10)).present) == (1, True)
    leave(e, 3000)
    assert (e.estimate(at(3010)).count, e.estimate(at(3010)).present) == (0, False)


# -- the PIRs -------------------------------------------------------------------------------
def test_silence_lowers_no_count_the_door_is_sure_of_until_the_night_does():
    """Six people tapped in and sat still: half an hour without a movement leaves them counted
    (the old rule zeroed the count after twenty minutes). Only a whole night of silence and
    closed hours brings the count to zero."""
    e = estimator(capacity=20, opening_hours=WEEKDAYS)
    for k in range(6):
        enter(e, 20 * k)
    moved(e, 150)
    for _, still in minutes(e, 180, 30):
        assert still.count == 6 and still.low >= 5 and still.confidence > 0.9, still
    next_morning = 21 * HOUR  # 06:00 the next day
    assert pass_minutes(e, 180 + 30 * 60, (next_morning - 1980) // 60).count == 0
    assert e.estimate(at(next_morning)).present is False


def test_a_pir_held_high_by_a_busy_room_keeps_fifteen_counted_for_an_hour():
    """A busy room keeps its PIR's line raised: one rise, no fall. That is movement all the
    while, never a silence (the old estimator zeroed 15 with 43 inside)."""
    e = estimator(capacity=30, opening_hours=WEEKDAYS)
    for k in range(15):
        enter(e, 10 * k)
    e.motion(ROOM, at(200))
    for t, estimate in minutes(e, 200, 60):
        assert estimate.present and abs(estimate.count - 15) <= 1, (t, estimate)
        assert estimate.rooms == {ROOM: True}


def test_a_held_line_finds_people_the_agent_did_not_see_come_in():
    e = started_unknown(0.5, capacity=20, opening_hours=WEEKDAYS)
    e.pir_levels({ROOM: True}, at(0))  # already high as the agent starts
    assert pass_minutes(e, 0, 10).low >= 1


def test_a_single_false_trigger_at_night_makes_an_empty_space_occupied_for_minutes_at_most():
    e = started_unknown(0.97, capacity=20, opening_hours=WEEKDAYS)
    night = -7 * HOUR  # 02:00
    e.tick(at(night - HOUR))
    moved(e, night)
    present = [estimate.present for _, estimate in minutes(e, night, 30)]
    assert sum(present) <= 5, present
    assert present[-10:] == [False] * 10


def test_closed_hours_alone_drift_slowly_and_a_moving_late_stayer_is_held():
    """A member tapped in at eight in the evening and stays past closing. Without PIRs the
    count drifts toward empty over hours, not at ten; with PIRs, their movement holds them."""
    blind = estimator(capacity=20, opening_hours=WEEKDAYS, rooms=())
    enter(blind, 11 * HOUR)  # 20:00
    assert pass_minutes(blind, 11 * HOUR, 3 * 60).present  # 23:00
    assert not pass_minutes(blind, 14 * HOUR, 7 * 60).present  # 06:00

    for moving in (True, False):
        e = estimator(capacity=20, opening_hours=WEEKDAYS)
        enter(e, 11 * HOUR)
        for t in range(11 * HOUR, int(15.5 * HOUR), 60):  # to 00:30
            if moving and (t // 60) % 8 == 0:
                moved(e, t)
            e.tick(at(t + 60))
        late = e.estimate(at(15.5 * HOUR))
        if moving:
            assert (late.count, late.low, late.present) == (1, 1, True), late
        else:  # four and a half hours without a movement, two of them closed
            assert not late.present, late


# -- a people counter at the door -------------------------------------------------------------
def test_a_counter_counts_each_passage_and_the_door_takes_over_while_it_is_blind():
    e = estimator(capacity=20, counter=True)
    e.tap_allowed(at(0))  # a group of three on one tap: the beams see each
    e.door_opened(at(2))
    for k in range(3):
        e.passage("in", at(3 + 1.5 * k))
    e.door_closed(at(12))
    three = e.estimate(at(20))
    assert (three.count, three.low, three.high) == (3, 2, 4) and three.confidence > 0.95
    leave(e, 100, button=False)  # opened from inside, nobody through the beams
    assert e.estimate(at(110)).count == 3
    e.door_opened(at(200))  # out by the handle: the beams tell
    e.passage("out", at(201))
    e.door_closed(at(205))
    assert e.estimate(at(210)).count == 2
    e.counter_working(False)  # a beam blocked: taps and presses count again
    enter(e, 300)
    assert e.estimate(at(310)).count == 3
    leave(e, 400)
    assert e.estimate(at(410)).count == 2
    e.counter_working(True)
    e.passage("in", at(500))
    assert e.estimate(at(510)).count == 3


def test_a_propped_door_widens_the_interval_while_it_stands_open():
    e = estimator(capacity=40)
    for k in range(5):
        enter(e, 15 * k)
    e.door_opened(at(300))
    widths = []
    for minute in range(1, 11):
        moved(e, 300 + minute * 60 - 40)
        e.tick(at(300 + minute * 60))
        estimate = e.estimate(at(300 + minute * 60))
        widths.append(estimate.high - estimate.low)
        assert estimate.present and estimate.low <= 5 <= estimate.high
    assert widths[0] < widths[4] < widths[9], widths
    e.door_closed(at(300 + 11 * 60))
    assert e.estimate(at(300 + 11 * 60)).uncertain == 1


def test_an_hour_of_silence_after_a_propped_door_leaves_no_crowd_in_the_interval():
    """The door stood propped for twenty minutes as the last people left; once it is shut,
    no PIR moves for an hour. Nobody, or one person sitting very still: not eighteen."""
    e = estimator(capacity=40, opening_hours=WEEKDAYS)
    for k in range(8):
        enter(e, 15 * k)
    e.door_opened(at(300))
    for minute in range(1, 21):
        moved(e, 300 + minute * 60)
        e.tick(at(300 + minute * 60 + 50))
    e.door_closed(at(300 + 21 * 60))
    hour_later = pass_minutes(e, 300 + 21 * 60, 60)
    assert not hour_later.present and hour_later.high <= 3, hour_later
