"""The simulated people's days: deterministic, consistent with the door, each behaviour a switch
that changes only what it names. Nothing here touches the estimator."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from sim.people_days import (
    DAY_TYPES,
    HELD_PIR,
    ROOMS,
    Behaviours,
    Segment,
    World,
    make_world,
    segment_movements,
)
from sim.room_sensors import Co2Sensor, RoomAir, co2_curve, co2_readings, pir_line

MINUTES = range(0, 24 * 3600, 60)


def off(name: str) -> Behaviours:
    return replace(Behaviours(), **{name: False})


def truth(world: World) -> list[int]:
    return [world.inside(t) for t in MINUTES]


def door(world: World) -> list[object]:
    return [s for s in world.signals if s.kind in ("tap", "press", "open", "close")]


def switch_ons(world: World) -> int:
    return sum(1 for s in world.signals if s.kind == "pir_on")


@pytest.mark.parametrize("kind", DAY_TYPES)
def test_a_day_is_the_same_for_the_same_seed_and_another_for_another(kind):
    a, b, c = make_world(kind, 7), make_world(kind, 7), make_world(kind, 8)
    assert a.signals == b.signals and a.episodes == b.episodes
    assert a.signals != c.signals


@pytest.mark.parametrize("kind", DAY_TYPES)
def test_the_true_count_is_entries_minus_exits_and_never_negative(kind):
    world = make_world(kind, 3)
    passages = world.passages()
    ins = {p: t for t, p, d in passages if d == 1}
    outs = {p: t for t, p, d in passages if d == -1}
    assert len(ins) == len(outs) == len(world.roles) == len(passages) / 2
    for person, segs in world.segments.items():
        assert ins[person] < outs[person]
        assert (segs[0].start, segs[-1].end) == (ins[person], outs[person])
    for t in MINUTES:
        inside = sum(1 for p in ins if ins[p] <= t < outs[p])
        assert world.inside(t) == inside >= 0
    assert max(truth(world)) > 0


def test_a_still_sitter_moves_for_the_pir_every_5_to_20_minutes_sometimes_30_to_45():
    sitting = Segment(9 * 3600, 17 * 3600, "coworking", "seated")
    gaps: list[float] = []
    for seed in range(5):
        moves = segment_movements(sitting, True, random.Random(seed))
        gaps += [(b - a) / 60 for a, b in itertools.pairwise(moves)]
        # alone in the room, each movement is a switch-on of its own (the hold is 30 s)
        assert [rise for rise, _ in pir_line(moves, HELD_PIR)] == moves
    assert all(5 <= g <= 20 or 30 <= g <= 45 for g in gaps)
    assert any(g >= 30 for g in gaps) and sum(g <= 20 for g in gaps) > len(gaps) / 2
    fidgety = segment_movements(sitting, False, random.Random(0))
    assert len(fidgety) > 2 * len(segment_movements(sitting, True, random.Random(0)))


def test_a_busy_room_holds_the_pir_line_high_one_switch_on_for_the_hour():
    walking = Segment(18 * 3600, 19 * 3600, "coworking", "active")
    moves = sorted(t for p in range(20) for t in segment_movements(walking, True, random.Random(p)))
    highs = pir_line(moves, HELD_PIR)
    assert len(highs) == 1
    assert highs[0][0] == walking.start and highs[0][1] >= walking.end - 60


def test_co2_rises_with_people_and_decays_with_ventilation_toward_outdoors():
    air = RoomAir(volume=300, ach_day=2.0)
    two_hours = 11 * 3600
    curve = co2_curve(air, lambda t: 3.0 if 9 * 3600 <= t < two_hours else 0.0, (0, 86400))
    at = {h: curve[int(h * 3600 / 10)] for h in (9, 10, 11, 12, 14, 20)}
    # 10 seated people, 3 L/min in 300 m³ at 2 air changes/h: steady at 420 + 300 ppm
    assert at[9] < 440 and at[10] > 650 and 700 < at[11] < 725
    assert at[11] > at[12] > at[14] > at[20] and at[20] - air.outdoor < 5
    readings = co2_readings(curve, 10.0, Co2Sensor(), random.Random(1))
    steps = [b[0] - a[0] for a, b in itertools.pairwise(readings)]
    assert all(29 <= s <= 61 for s in steps)
    near_steady = [ppm for t, ppm in readings if 10.7 * 3600 < t < two_hours]
    assert len(set(near_steady)) > 3  # noisy, not a copy of the curve
    assert abs(sum(near_steady) / len(near_steady) - 712) < 30


def test_busy_event_has_a_crowd_and_a_ventilated_room_fills_with_co2():
    world = make_world("event", 2)
    assert 30 <= max(truth(world)) <= 55
    assert max(world.co2["coworking"]) > 1500


# -- each behaviour switch changes what it names, and nothing else --------------------------
SENSOR_ONLY = ("still_sitters", "night_triggers", "pir_held_on")


@pytest.mark.parametrize("name", SENSOR_ONLY)
def test_a_sensor_behaviour_switched_off_leaves_the_people_and_the_door_as_they_were(name):
    for kind in DAY_TYPES:
        on, without = make_world(kind, 5), make_world(kind, 5, off(name))
        assert without.episodes == on.episodes and door(without) == door(on)
        assert without.co2 == on.co2
        assert without.signals != on.signals or name == "night_triggers"


def test_without_still_sitters_a_quiet_room_switches_its_pir_on_more_often():
    fidgety, still = make_world("still", 1, off("still_sitters")), make_world("still", 1)
    assert switch_ons(fidgety) > 1.5 * switch_ons(still)


def test_without_held_pirs_every_movement_is_a_short_pulse():
    on, without = make_world("event", 1), make_world("event", 1, off("pir_held_on"))
    assert without.movements == on.movements
    assert all(fall - rise <= 2 for highs in without.pir.values() for rise, fall in highs)
    assert switch_ons(without) > 5 * switch_ons(on)


def test_night_triggers_fire_only_in_an_empty_space_and_only_when_on():
    def empty_switch_ons(world: World) -> int:
        return sum(
            1
            for room in ROOMS
            for rise, _ in world.pir[room]
            if world.in_room(room, rise) == 0 and world.inside(rise) == 0
        )

    assert (
        sum(empty_switch_ons(make_world("quiet", s, off("night_triggers"))) for s in range(4)) == 0
    )
    assert sum(empty_switch_ons(make_world("quiet", s)) for s in range(4)) > 0


def test_without_inside_openings_every_opening_from_inside_lets_someone_out():
    for seed in range(4):
        on, without = (
            make_world("typical", seed),
            make_world("typical", seed, off("inside_openings")),
        )
        assert truth(without) == truth(on)  # guests tap a visitor card instead
        assert all(e.leaving for e in without.episodes if e.inside)
    couriers = [
        e for s in range(4) for e in make_world("typical", s).episodes if e.inside and not e.leaving
    ]
    assert couriers and all(not e.tap and not e.press for e in couriers)


def test_without_groups_everyone_opens_the_door_for_themselves():
    on, without = make_world("typical", 2), make_world("typical", 2, off("groups"))
    assert max(len(e.entering) + len(e.leaving) for e in on.episodes) > 1
    people = [len(e.entering) + len(e.leaving) for e in without.episodes if e.open_for]
    assert set(people) <= {0, 1}  # 0: a courier
    times = {(p, d): t for t, p, d in on.passages()}
    assert {(p, d) for _, p, d in without.passages()} == times.keys()
    assert all(abs(t - times[p, d]) < 60 for t, p, d in without.passages())


def test_without_a_propped_door_no_opening_lasts_minutes():
    def longest(world: World) -> float:
        opens = [s.at for s in world.signals if s.kind == "open"]
        closes = [s.at for s in world.signals if s.kind == "close"]
        return max(z - a for a, z in zip(opens, closes, strict=True))

    on, without = make_world("event", 4), make_world("event", 4, off("propped_door"))
    assert longest(on) > 10 * 60 and longest(without) < 60
    assert without.roles == on.roles


def test_without_cleaners_only_the_cleaner_is_missing():
    on, without = make_world("quiet", 6), make_world("quiet", 6, off("cleaners"))
    assert set(on.roles) - set(without.roles) == {"c0"} and on.roles["c0"] == "cleaner"
    assert [e for e in on.episodes if "c0" not in e.entering + e.leaving] == without.episodes


def test_without_late_stays_nobody_but_a_cleaner_is_in_after_closing():
    def after_closing(world: World) -> set[str]:
        return {p for p, segs in world.segments.items() if segs[-1].end > 22 * 3600}

    late = set().union(*(after_closing(make_world("typical", s)) for s in range(3)))
    assert any(p != "c0" for p in late)
    for s in range(3):
        on, without = make_world("typical", s), make_world("typical", s, off("late_stays"))
        assert after_closing(without) <= {"c0"}
        moved = set(on.passages()) ^ set(without.passages())
        assert {p for _, p, _ in moved} <= after_closing(on)


def test_without_handle_exits_everyone_leaving_presses_the_button():
    def bare_exits(world: World) -> int:
        return sum(1 for e in world.episodes if e.leaving and e.open_for and not e.press)

    assert sum(bare_exits(make_world("typical", s)) for s in range(3)) > 0
    for s in range(3):
        without = make_world("typical", s, off("handle_exits"))
        assert bare_exits(without) == 0
        assert truth(without) == truth(make_world("typical", s))
