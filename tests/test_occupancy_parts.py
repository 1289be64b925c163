"""The parts the occupancy estimator is built from, each on its own: the belief over the count
(``headcount``), what a door opening may have been (``door_reading``), what the PIRs' lines
say (``motion_evidence``) and how the CO2 readings become person-minutes (``room_air``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from edge.agent import door_reading
from edge.agent.door_reading import PassageTiming
from edge.agent.headcount import CountBelief
from edge.agent.motion_evidence import PACES, MotionEvidence, Stillness
from edge.agent.room_air import AirWatch, RoomAir

T0 = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
TIMING = PassageTiming()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def table(pairs) -> dict[int, float]:
    out: dict[int, float] = {}
    for change, weight in pairs:
        out[change] = out.get(change, 0.0) + weight
    return out


def likeliest(pairs) -> int:
    weights = table(pairs)
    return max(weights, key=weights.__getitem__)


def share(pairs, change: int) -> float:
    """The share of a reading's weight on ``change`` (readings compare across counts, so
    their weights do not sum to one)."""
    weights = table(pairs)
    return weights.get(change, 0.0) / sum(weights.values())


# -- CountBelief ------------------------------------------------------------------------------
def test_a_move_whose_weights_depend_on_the_count_reweighs_the_counts():
    """An exit press is unlikely from an empty space: the count that explains it gains."""
    belief = CountBelief(5, [0.5, 0.0, 0.5, 0.0, 0.0, 0.0])
    belief.move(lambda n: [(0, 0.01)] if n == 0 else [(-1, 1.0)])
    assert belief.p[0] == pytest.approx(0.005 / 0.505)
    assert belief.p[1] == pytest.approx(0.5 / 0.505)
    assert sum(belief.p) == pytest.approx(1.0)


def test_evidence_no_count_can_explain_leaves_the_belief_as_it_was():
    belief = CountBelief(4, [0.1, 0.2, 0.4, 0.2, 0.1])
    before = list(belief.p)
    belief.weigh(lambda n: 0.0)  # a sensor gone mad
    belief.move(lambda n: [(1, 0.0)])  # a door reading that fits no count
    assert belief.p == before
    belief.weigh(lambda n: 1.0 if n == 2 else 0.0)  # evidence that fits one count
    assert belief.p == pytest.approx([0, 0, 1, 0, 0])


def test_quantiles_interval_and_the_chance_of_being_within_one():
    belief = CountBelief(4, [0.1, 0.2, 0.4, 0.2, 0.1])
    assert (belief.quantile(0.05), belief.median, belief.quantile(0.95)) == (0, 2, 4)
    assert belief.interval(0.9) == (0, 4) and belief.interval(0.6) == (1, 3)
    assert belief.within(2) == pytest.approx(0.8)
    assert belief.within(2, distance=0) == pytest.approx(0.4)
    assert belief.within(0) == pytest.approx(0.3)
    assert belief.empty == pytest.approx(0.1)


def test_changes_beyond_the_counts_are_held_at_the_bounds():
    belief = CountBelief(5, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    belief.move(lambda n: [(-4, 0.5), (+9, 0.5)])
    assert belief.p == pytest.approx([0.5, 0, 0, 0, 0, 0.5])


def test_an_unknown_start_is_even_odds_of_empty_then_fewer_likelier_than_more():
    belief = CountBelief.unknown(100)
    assert belief.empty == pytest.approx(0.5)
    occupied = belief.p[1:]
    assert all(a > b for a, b in itertools.pairwise(occupied[:10]))
    mean_if_not = sum(n * p for n, p in enumerate(belief.p)) / (1 - belief.empty)
    assert mean_if_not == pytest.approx(5.0, rel=0.01)  # one, plus four on average
    assert CountBelief.unknown(20, empty=0.97).interval(0.9) == (0, 0)


def test_a_belief_needs_room_for_someone_and_one_probability_per_count():
    with pytest.raises(ValueError, match="at least one"):
        CountBelief(0)
    with pytest.raises(ValueError, match="3 probabilities"):
        CountBelief(5, [0.5, 0.25, 0.25])


# -- door_reading -------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [3.0, 4.5, 8.0, 12.0, 30.0])
def test_an_entry_is_a_distribution_of_one_or_more_in(seconds):
    entry = door_reading.entry(TIMING, seconds, taps=1)
    assert sum(w for _, w in entry) == pytest.approx(1.0)
    assert min(change for change, _ in entry) >= 1


def test_a_quick_entry_is_one_person_and_a_long_one_likely_a_group():
    assert table(door_reading.entry(TIMING, 4.5, 1))[1] > 0.85
    long = table(door_reading.entry(TIMING, 10.0, 1))
    assert long[1] < 0.5 and sum(w for k, w in long.items() if k >= 2) > 0.5
    two_taps = table(door_reading.entry(TIMING, 6.5, 2))
    assert likeliest(two_taps.items()) == 2 and two_taps[1] > 0.05  # or one tapped twice


def test_a_short_opening_after_a_press_is_most_likely_one_out():
    exits = list(door_reading.exit_by_button(TIMING, 4.0, 3))
    assert likeliest(exits) == -1 and share(exits, -1) > 0.8
    from_empty = list(door_reading.exit_by_button(TIMING, 4.0, 0))
    assert all(change >= 0 for change, _ in from_empty)
    # Weights compare across counts: a press with nobody inside is a hundred times rarer.
    assert sum(w for _, w in from_empty) < 0.01 * sum(w for _, w in exits)


def test_an_opening_from_inside_is_one_out_when_short_and_nobody_through_when_long():
    short = list(door_reading.from_inside(TIMING, 4.0, 3))
    assert likeliest(short) == -1
    assert share(short, +1) > 0.1  # a visitor let in stays possible
    long = list(door_reading.from_inside(TIMING, 25.0, 3))
    assert likeliest(long) == 0 and share(long, 0) > 0.5  # a courier, a parcel
    at_empty = list(door_reading.from_inside(TIMING, 4.0, 0))
    assert all(change > 0 for change, _ in at_empty)  # a key from outside
    assert sum(w for _, w in at_empty) < 0.1 * sum(w for _, w in short)


def test_a_counters_passages_are_trusted_with_a_small_chance_of_a_miss_or_a_pair():
    one_in = table(door_reading.counted(1, 0))
    assert one_in[1] == pytest.approx(door_reading.COUNTER_RIGHT)
    assert set(one_in) == {0, 1, 2}
    both = table(door_reading.counted(2, 1))
    assert sum(both.values()) == pytest.approx(1.0) and likeliest(both.items()) == 1
    assert door_reading.counted(0, 0) == [(0, 1.0)]


def test_a_propped_door_lets_the_count_wander_both_ways_ever_wider():
    def spread(minutes: float) -> float:
        return sum(k * k * w for k, w in door_reading.propped_minute(minutes, 1.0))

    drift = table(door_reading.propped_minute(5, 1.0))
    assert sum(drift.values()) == pytest.approx(1.0, abs=1e-4)
    assert all(drift[k] == pytest.approx(drift[-k]) for k in drift)
    assert spread(5) == pytest.approx(10.0, rel=0.01)  # two Poisson counts of five each
    assert spread(1) < spread(5) < spread(20)


# -- motion_evidence ------------------------------------------------------------------------------
def test_one_person_is_ever_less_likely_to_have_kept_still_and_never_for_hours():
    still = Stillness()
    ones = [still.one(m) for m in range(0, 121, 5)]
    assert ones[0] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(ones))
    assert still.one(120) == 0.0
    assert 0.1 < still.one(20) < 0.4  # a seated person often sits twenty minutes
    assert all(still.quiet(m, 0) == 1.0 for m in (0, 30, 600))
    assert still.quiet(30, 1) > still.quiet(30, 3) > still.quiet(30, 6)


def test_after_a_silence_a_movement_is_likelier_from_a_few_than_from_one_or_none():
    """The more people sit still, the sooner one of them moves; with nobody there only a
    false trigger ends a silence."""
    ten = Stillness().ending(10.0, false_per_minute=0.003)
    assert ten(0) == 0.003
    assert all(ten(n) < ten(n + 1) for n in range(6))
    thirty = Stillness().ending(30.0, false_per_minute=0.003)
    assert thirty(3) > thirty(1) > thirty(0)


def test_a_slower_pace_stretches_every_gap():
    slow = Stillness().at_pace(2.0)
    assert slow.gaps[0][1:] == (10.0, 40.0)
    assert slow.one(20) > Stillness().one(20)


def test_the_pace_that_explained_what_the_lines_did_gains_weight():
    motion = MotionEvidence(("coworking",))
    motion.learn_pace({0.25: 0.1, 0.5: 0.1, 1.0: 0.1, 2.0: 1.0})
    assert motion.paces[2.0] > PACES[2.0] and motion.paces[0.25] < PACES[0.25]
    assert sum(motion.paces.values()) == pytest.approx(1.0)
    learnt = dict(motion.paces)
    motion.learn_pace(dict.fromkeys(PACES, 0.5))  # evidence that fits every pace alike
    assert motion.paces == pytest.approx(learnt)
    motion.learn_pace(dict.fromkeys(PACES, 1.0), hours=200)  # weeks on: back to the prior
    assert motion.paces == pytest.approx(PACES, abs=1e-3)


def test_a_rise_with_no_silence_before_it_only_says_someone_is_there():
    motion = MotionEvidence(("coworking", "meeting"))
    assert motion.rose("kitchen", at(0)) is None  # not a room it watches
    paced = motion.rose("coworking", at(0))
    assert paced is not None
    assert all(f(0) == motion.false_trigger and f(1) == f(7) == 1.0 for f in paced.values())
    assert motion.room_active("coworking", at(5))
    motion.fell("coworking", at(1))
    assert motion.room_active("coworking", at(10)) and not motion.room_active("coworking", at(12))


def test_a_line_held_high_fades_the_empty_count_and_nothing_else():
    motion = MotionEvidence(("coworking",), hold_seconds=30)
    motion.rose("coworking", at(0))
    held = motion.passing(at(0), at(5))  # ten hold times with the line high
    assert held is not None
    for f in held.values():
        assert f(0) < 0.01 and f(1) == f(20) == 1.0


def test_the_longer_everyone_keeps_still_the_fewer_people_explain_it():
    """Thirty minutes in which every line stays low, read minute by minute as the estimator
    does: whatever the pace, each further person makes such a silence less likely."""
    motion = MotionEvidence(("coworking",), hold_seconds=30)
    motion.rose("coworking", at(0))
    motion.fell("coworking", at(0.5))
    total = {pace: [1.0] * 21 for pace in PACES}
    for minute in range(1, 31):
        paced = motion.passing(at(minute - 0.5), at(minute + 0.5))
        for pace, f in (paced or {}).items():
            total[pace] = [t * f(n) for n, t in enumerate(total[pace])]
    for pace, likelihood in total.items():
        worse = [n for n in range(1, 21) if likelihood[n] > likelihood[n - 1] * 1.000001]
        assert not worse, (pace, worse, likelihood)


# -- room_air ---------------------------------------------------------------------------------
def watch(*rooms: str) -> AirWatch:
    return AirWatch({room: RoomAir(volume_m3=100) for room in rooms})


def test_the_outdoor_level_is_learnt_from_a_long_low_stretch():
    air = watch("coworking")
    for k in range(50):  # 25 minutes of a sensor reading 30 ppm above the usual outdoors
        air.reading("coworking", 450 + (k % 3) - 1, at(k / 2))
    assert air.outdoor("coworking") is None  # not yet half an hour
    for k in range(50, 120):
        air.reading("coworking", 450 + (k % 3) - 1, at(k / 2))
    assert air.outdoor("coworking") == pytest.approx(450, abs=1)
    air.reading("coworking", 900, at(61))  # people: the outdoor level stays the lowest
    assert air.outdoor("coworking") == pytest.approx(450, abs=1)


def test_a_sensor_unheard_for_five_minutes_is_silent():
    air = watch("coworking")
    assert air.silent(at(0))  # never heard
    air.reading("coworking", 600, at(0))
    assert not air.silent(at(5))
    assert air.silent(at(5.1))
    air.reading("coworking", None, at(5.5))  # a failed reading is not one heard
    air.reading("coworking", 0, at(5.5))  # nor one out of range
    assert air.silent(at(5.6))


def test_an_observation_needs_every_sensor_and_counts_person_minutes():
    air = watch("coworking", "meeting")
    air.reading("coworking", 750, at(0))
    assert air.observe(at(0), open_now=True) is None  # the meeting room's sensor was not heard
    air.reading("coworking", 750, at(1))
    air.reading("meeting", 420, at(1))
    first = air.observe(at(2), open_now=True)
    assert first is not None and first.minutes == 0  # the first only starts the air
    air.reading("coworking", 750, at(3))
    air.reading("meeting", 420, at(3))
    second = air.observe(at(4), open_now=True)
    assert second is not None and second.minutes == 2
    # 100 m³ 330 ppm above outdoors: 33 L of CO2, a hundred minutes of one person's breath
    assert second.held == pytest.approx(100, rel=1e-6)
    # two air changes an hour take 1/30 of it a minute
    assert second.removed == pytest.approx(100 / 30 * 2, rel=1e-6)
    assert air.observe(at(6), open_now=True) is None  # nothing read since
