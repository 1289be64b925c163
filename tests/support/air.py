"""A room's CO2 as a sensor reads it while people breathe in it: the test's own mass balance,
written apart from the estimator's."""

from __future__ import annotations

import random

OUTDOOR_PPM = 420.0


def breathed(people: int, volume: float, minutes: float, rng: random.Random) -> list[int]:
    """A room's CO2 every 30 s while ``people`` breathe in it (0.33 L a minute each, two air
    changes an hour, sensor noise of 10 ppm), from outdoor air."""
    ppm, readings = OUTDOOR_PPM, []
    for _ in range(int(minutes * 2)):
        source = people * 0.33e-3 * 1e6 / volume  # ppm a minute: m³ of CO2 in the room's m³
        ppm += 0.5 * (source - 2 / 60 * (ppm - OUTDOOR_PPM))
        readings.append(round(ppm + rng.gauss(0, 10)))
    return readings
