"""What a room's sensors make of the people in it: a PIR's output line and a CO2 reading.

A ceiling PIR module (HC-SR501 and its kin, retriggering mode) raises its output on movement and
holds it high until ``hold`` seconds after the *last* movement it saw; after falling it is blind
for ``blocked`` seconds. A busy room therefore keeps the line high for hours: one switch-on, no
more, which is all a listener on the rising edge (gpiozero's ``when_motion``) hears. The line is
modelled as levels over time, not as motion events, so that both edges are there to read.

The CO2 model is the usual single-zone mass balance: each person breathes out CO2 at a rate set by
what they do (about 0.3 L/min seated), the ventilation exchanges the room's air with outdoor air
at ``ach`` air changes per hour, and the concentration relaxes exponentially toward its steady
state. The sensor sees it through a first-order lag (NDIR sensors answer in a minute or two) and
reports it every 30-60 s with noise, as a whole number of ppm.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

OUTDOOR_PPM = 420.0
#: Litres of CO2 a minute per person, by what they are doing (adults; ASHRAE 62.1 ballpark).
CO2_LPM = {"seated": 0.3, "meeting": 0.33, "active": 0.45}


@dataclass(frozen=True)
class PirModule:
    """A PIR module's timing: output hold after the last movement, blind time after it falls."""

    hold: float = 30.0
    blocked: float = 2.5
    #: Retriggering (repeat mode): movement while high extends the hold. Off: every movement
    #: gives its own short pulse, as an idealised sensor would.
    retrigger: bool = True


def pir_line(movements: Iterable[float], pir: PirModule) -> list[tuple[float, float]]:
    """The intervals (rise, fall) during which the PIR's output is high."""
    highs: list[tuple[float, float]] = []
    high: tuple[float, float] | None = None
    blind_until = -math.inf
    for t in sorted(movements):
        if high is not None and t < high[1]:  # the line is high
            if pir.retrigger:
                high = (high[0], t + pir.hold)
            continue
        if high is not None:  # it fell before this movement
            highs.append(high)
            blind_until, high = high[1] + pir.blocked, None
        if t >= blind_until:
            high = (t, t + pir.hold)
    if high is not None:
        highs.append(high)
    return highs


@dataclass(frozen=True)
class RoomAir:
    """A room's air: volume in m³ and air changes per hour by day (opening hours) and night."""

    volume: float
    ach_day: float
    ach_night: float = 0.5
    outdoor: float = OUTDOOR_PPM


def co2_curve(
    air: RoomAir,
    breathing: Callable[[float], float],
    day_hours: tuple[float, float] = (7 * 3600, 22 * 3600),
    step: float = 10.0,
    start_ppm: float | None = None,
    until: float = 24 * 3600,
) -> list[float]:
    """The room's true CO2 (ppm) every ``step`` seconds from midnight.

    ``breathing(t)`` is the CO2 the room's people breathe out at second ``t``, in L/min.
    Exact for a constant source over each step: C relaxes toward C_out + G / (V·λ).
    """
    ppm = air.outdoor + 10 if start_ppm is None else start_ppm
    curve = [ppm]
    t = 0.0
    while t < until:
        ach = air.ach_day if day_hours[0] <= t < day_hours[1] else air.ach_night
        rate = ach / 3600  # per second
        source = breathing(t) / 1000 / 60  # m³ CO2 per second
        steady = air.outdoor + source / (air.volume * rate) * 1e6
        ppm = steady + (ppm - steady) * math.exp(-rate * step)
        curve.append(ppm)
        t += step
    return curve


@dataclass(frozen=True)
class Co2Sensor:
    """How a sensor reads the curve: response lag, noise (MH-Z19B: ±50 ppm + 5 %), interval."""

    lag: float = 60.0
    noise_ppm: float = 15.0
    noise_share: float = 0.02
    every: tuple[float, float] = (30.0, 60.0)


def co2_readings(
    curve: list[float], step: float, sensor: Co2Sensor, rng: random.Random
) -> list[tuple[float, int]]:
    """(second, ppm) readings of ``curve`` (sampled every ``step`` s) as the sensor reports them."""
    interval = rng.uniform(*sensor.every)
    t, seen, readings = rng.uniform(0, interval), curve[0], []
    k = 0
    end = (len(curve) - 1) * step
    while t < end:
        while (k + 1) * step <= t:  # the sensor's lagged view, advanced to t
            k += 1
            seen += (curve[k] - seen) * (1 - math.exp(-step / sensor.lag))
        sd = sensor.noise_ppm + sensor.noise_share * seen
        readings.append((t, max(0, round(seen + rng.gauss(0, sd)))))
        t += interval + rng.uniform(-1, 1)
    return readings
