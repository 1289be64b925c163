"""A room's air changes an hour, learnt from its own air while the space is surely empty."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from edge.agent.air_learning import FITS_BEFORE_USE, DecayLearner

T0 = datetime(2026, 3, 11, 19, 0, tzinfo=UTC)


def empty_evening(learner: DecayLearner, changes: float, start_ppm: float, seed: int) -> None:
    """An hour of readings every 30 s (noise 15 ppm) while the room's excess decays, on the
    evening of day ``seed``."""
    rng, evening = random.Random(seed), T0 + timedelta(days=seed)
    for step in range(120):
        minutes = step / 2
        excess = start_ppm * math.exp(-changes * minutes / 60) + rng.gauss(0, 15)
        learner.reading(evening + timedelta(minutes=minutes), excess, empty=True)
    learner.reading(evening + timedelta(hours=2), 0.0, empty=False)  # people again


def test_the_rate_is_learnt_from_empty_evenings_and_used_once_fits_agree():
    learner = DecayLearner(configured=1.0)  # the config says one change an hour: it is two
    empty_evening(learner, 2.0, 400, seed=1)
    assert learner.fits == 1 and learner.changes == 1.0  # one fit is not enough to use
    for seed in range(2, 2 + FITS_BEFORE_USE):
        empty_evening(learner, 2.0, 400, seed)
    assert abs(learner.changes - 2.0) < 0.3, learner.changes


def test_air_near_outdoor_level_or_people_inside_teach_nothing():
    learner = DecayLearner(configured=2.0)
    empty_evening(learner, 2.0, 20, seed=1)  # within the noise of outdoor air
    for step in range(120):  # a busy room's air, never surely empty
        learner.reading(T0 + timedelta(seconds=30 * step), 300.0, empty=False)
    assert learner.fits == 0 and learner.changes == 2.0


def test_a_window_left_open_is_not_learnt_as_the_rooms_rate():
    learner = DecayLearner(configured=0.5)
    for seed in range(4):
        empty_evening(learner, 6.0, 600, seed)  # twelve times the configured rate
    assert learner.fits == 0 and learner.changes == 0.5
