"""For each possible count, what the room air would hold: a small Kalman filter per count.

The air's CO2 above outdoor is counted in person-minutes (``edge.agent.room_air``). For each
count ``n`` the filter follows three numbers:

* ``held``: the CO2 truly held above outdoor;
* ``error``: how far the people here breathe more or less than the set rate (relative: 0.1
  is ten percent more). Without it, people breathing 10 % less than set would read as 10 %
  fewer people, more surely every hour;
* ``offset``: how far the outdoor level learnt from the readings is off (a sensor's drift,
  outdoor air a little richer today). Without it, a few ppm too much would read as someone
  sitting in an empty room.

Per minute, with ``removed`` what ventilation took by the readings and ``rate`` its pace:

    held += n · (1 + error) − removed + rate · offset      (what the readings' error hid)
    error slowly returns to 0; offset barely moves
    a reading sees held + offset

A steady difference is absorbed by ``error`` and ``offset``, while a sudden change of slope
(people through a propped door) still shows as a change of count. When the door moves
probability between counts, their estimates are merged by weight (moment matching, as in
interacting-multiple-model trackers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: How far people's breathing (and so the CO2 per person) may differ from the set rate
#: (one sigma, relative), and how many hours such a difference lasts.
BREATHING_SD, BREATHING_HOURS = 0.2, 2.0
#: How far what ventilation removes may be off over one step (relative, one sigma).
VENTILATION_SD = 0.15
#: Variance per minute for everything else: air not mixed at once, the sensors' lag.
MIXING_VAR = 2.0
#: People's breathing also changes from minute to minute (sitting down, talking, walking
#: about): relative spread, and the minutes over which it averages out.
ACTIVITY_SD, ACTIVITY_MINUTES = 0.0, 5.0
#: How much the offset may wander a day (variance, as a share of its prior variance).
OFFSET_DRIFT_PER_DAY = 0.25

Vector = list[float]
Matrix = list[list[float]]


@dataclass
class AirCells:
    """(held, error, offset) Gaussians for counts 0..``most``; unknown until observed.
    ``offset_sd`` is the prior spread of the offset, in person-minutes."""

    most: int
    offset_sd: float = 5.0
    known: bool = False
    mean: list[Vector] = field(default_factory=list)
    cov: list[Matrix] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.mean:
            self._start(0.0, 1.0)

    @property
    def held(self) -> list[float]:
        return [m[0] for m in self.mean]

    @property
    def error(self) -> list[float]:
        return [m[1] for m in self.mean]

    def mix(self, sources: list[list[tuple[int, float]]]) -> None:
        """Each count ``t`` now holds the weighted mix of the counts ``sources[t]`` came from."""
        if not self.known:
            return
        mean, cov = self.mean, self.cov
        new_mean, new_cov = list(mean), list(cov)
        for t, came in enumerate(sources):
            total = sum(w for _, w in came)
            if total <= 0:
                continue
            m = [sum(w * mean[s][i] for s, w in came) / total for i in range(3)]
            c = [[0.0] * 3 for _ in range(3)]
            for s, w in came:
                d = [mean[s][i] - m[i] for i in range(3)]
                for i in range(3):
                    for j in range(3):
                        c[i][j] += w * (cov[s][i][j] + d[i] * d[j])
            new_mean[t] = m
            new_cov[t] = [[c[i][j] / total for j in range(3)] for i in range(3)]
        self.mean, self.cov = new_mean, new_cov

    def share_error(self, weights: list[float]) -> None:
        """Give every count the site's breathing error, weighted by ``weights``.

        The error is one number for the site, not one per count: left to itself, an unlikely
        count would explain any air with an absurd error (eight people breathing like forty)
        and never lose to the likely ones when the air finally says it should."""
        if not self.known:
            return
        total = sum(weights)
        if total <= 0:
            return
        mean = sum(w * m[1] for w, m in zip(weights, self.mean, strict=True)) / total
        var = (
            sum(
                w * (c[1][1] + (m[1] - mean) ** 2)
                for w, m, c in zip(weights, self.mean, self.cov, strict=True)
            )
            / total
        )
        for n, (m, c) in enumerate(zip(self.mean, self.cov, strict=True)):
            scale = math.sqrt(var / c[1][1]) if c[1][1] > 0 else 0.0
            self.mean[n] = [m[0], mean, m[2]]
            c[1][1] = var
            c[0][1] = c[1][0] = c[0][1] * scale
            c[2][1] = c[1][2] = c[2][1] * scale

    def predict(self, minutes: float, removed: float, rate: float) -> None:
        """Let ``minutes`` pass: each count breathes into the air, ventilation removes
        ``removed`` by the readings, at ``rate`` (air changes a minute, volume-weighted)."""
        if not self.known or minutes <= 0:
            return
        keep = math.exp(-minutes / (BREATHING_HOURS * 60))
        activity = ACTIVITY_SD**2 * ACTIVITY_MINUTES * minutes
        noise = (
            (VENTILATION_SD * removed) ** 2 + MIXING_VAR * minutes,
            BREATHING_SD**2 * (1 - keep * keep),
            self.offset_sd**2 * OFFSET_DRIFT_PER_DAY * minutes / 1440,
        )
        for n in range(self.most + 1):
            a = n * minutes
            f = ((1.0, a, rate * minutes), (0.0, keep, 0.0), (0.0, 0.0, 1.0))
            m = self.mean[n]
            self.mean[n] = [
                m[0] + a * (1 + m[1]) - removed + rate * minutes * m[2],
                keep * m[1],
                m[2],
            ]
            p = self.cov[n]
            q_held = noise[0] + activity * n * n
            fp = [[sum(f[i][k] * p[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
            self.cov[n] = [
                [
                    sum(fp[i][k] * f[j][k] for k in range(3))
                    + ((q_held if i == 0 else noise[i]) if i == j else 0.0)
                    for j in range(3)
                ]
                for i in range(3)
            ]

    def observe(self, observed: float, noise_var: float) -> list[float] | None:
        """Correct every count's estimate by a reading of held + offset; returns each count's
        log-likelihood of it (None the first time: it only starts the estimates)."""
        if not self.known:
            self._start(observed, noise_var)
            self.known = True
            return None
        fit = []
        for n in range(self.most + 1):
            m, p = self.mean[n], self.cov[n]
            h = (p[0][0] + p[2][0], p[0][1] + p[2][1], p[0][2] + p[2][2])  # H·P, H = (1, 0, 1)
            total = h[0] + h[2] + noise_var
            innovation = observed - m[0] - m[2]
            fit.append(-0.5 * innovation * innovation / total - 0.5 * math.log(total))
            gain = [h[i] / total for i in range(3)]
            self.mean[n] = [m[i] + gain[i] * innovation for i in range(3)]
            self.cov[n] = [[p[i][j] - gain[i] * h[j] for j in range(3)] for i in range(3)]
        return fit

    def forget(self) -> None:
        self.known = False

    def _start(self, observed: float, noise_var: float) -> None:
        """Start from one reading: held = reading − offset, so the two are tied."""
        size, o = self.most + 1, self.offset_sd**2
        self.mean = [[observed, 0.0, 0.0] for _ in range(size)]
        self.cov = [
            [[noise_var + o, 0.0, -o], [0.0, BREATHING_SD**2, 0.0], [-o, 0.0, o]]
            for _ in range(size)
        ]
