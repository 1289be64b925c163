"""For each possible count, what the room air would hold: a small Kalman filter per count.

The air's CO2 above outdoor is counted in person-minutes (``edge.agent.room_air``). People
breathe more or less than the set rate (sitting, talking, walking about; adults, children),
and a room's volume is never quite what was measured: one number for the site, ``error``,
scales what each person adds. It is not known, so the belief carries a few values of it
(``BREATHING``, each with a prior weight) beside every count, and the evidence weighs the
pairs: a count is compared with the air under each error, never under the error that some
other, likelier count needed (which would let the wrong count win by default).

For each pair (error, count ``n``) the filter follows two numbers:

* ``held``: the CO2 truly held above outdoor;
* ``offset``: how far the outdoor level learnt from the readings is off (a sensor's drift,
  outdoor air a little richer today). Without it, a few ppm too much would read as someone
  sitting in an empty room.

Per minute, with ``removed`` what ventilation took by the readings and ``rate`` its pace:

    held += n · (1 + error) − removed + rate · offset      (what the readings' error hid)
    a reading sees held + offset

When the door moves probability between counts, their estimates are merged by weight
(moment matching, as in interacting-multiple-model trackers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: The breathing errors the belief weighs, with their prior weights (about one sigma of 20 %).
BREATHING = ((-0.3, 0.1), (-0.15, 0.2), (0.0, 0.33), (0.15, 0.2), (0.3, 0.1), (0.5, 0.07))
#: How far what ventilation removes may be off over one step (relative, one sigma).
VENTILATION_SD = 0.15
#: Variance per minute for everything else: air not mixed at once, the sensors' lag.
MIXING_VAR = 2.0
#: How much the offset may wander a day (variance, as a share of its prior variance).
OFFSET_DRIFT_PER_DAY = 0.25
#: A reading this many sigmas from every cell's prediction is not believed.
OUTLIER_SIGMAS = 6.0


@dataclass
class AirCells:
    """(held, offset) Gaussians for each breathing error and count 0..``most``, in one flat
    list (error-major); unknown until the first observation. ``offset_sd`` is the prior
    spread of the offset, in person-minutes."""

    most: int
    offset_sd: float = 5.0
    known: bool = False
    rejected: bool = False
    held: list[float] = field(default_factory=list)
    offset: list[float] = field(default_factory=list)
    p_hh: list[float] = field(default_factory=list)
    p_ho: list[float] = field(default_factory=list)
    p_oo: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.held:
            self._start(0.0, 1.0)

    @property
    def size(self) -> int:
        return len(BREATHING) * (self.most + 1)

    def mix(self, sources: list[list[tuple[int, float]]]) -> None:
        """Each cell ``t`` now holds the weighted mix of the cells ``sources[t]`` came from."""
        if not self.known:
            return
        held, offset = self.held[:], self.offset[:]
        p_hh, p_ho, p_oo = self.p_hh[:], self.p_ho[:], self.p_oo[:]
        for t, came in enumerate(sources):
            if len(came) == 1 and came[0][0] == t:
                continue
            total = sum(w for _, w in came)
            if total <= 0:
                continue
            h = sum(w * held[s] for s, w in came) / total
            o = sum(w * offset[s] for s, w in came) / total
            self.held[t], self.offset[t] = h, o
            self.p_hh[t] = sum(w * (p_hh[s] + (held[s] - h) ** 2) for s, w in came) / total
            self.p_ho[t] = (
                sum(w * (p_ho[s] + (held[s] - h) * (offset[s] - o)) for s, w in came) / total
            )
            self.p_oo[t] = sum(w * (p_oo[s] + (offset[s] - o) ** 2) for s, w in came) / total

    def predict(self, minutes: float, removed: float, rate: float) -> None:
        """Let ``minutes`` pass: each count breathes into the air, ventilation removes
        ``removed`` by the readings, at ``rate`` (air changes a minute, volume-weighted)."""
        if not self.known or minutes <= 0:
            return
        q_held = (VENTILATION_SD * removed) ** 2 + MIXING_VAR * minutes
        q_off = self.offset_sd**2 * OFFSET_DRIFT_PER_DAY * minutes / 1440
        a = rate * minutes
        i = 0
        for error, _ in BREATHING:
            per_person = (1 + error) * minutes
            for n in range(self.most + 1):
                hh, ho, oo = self.p_hh[i], self.p_ho[i], self.p_oo[i]
                self.held[i] += n * per_person - removed + a * self.offset[i]
                self.p_hh[i] = hh + 2 * a * ho + a * a * oo + q_held
                self.p_ho[i] = ho + a * oo
                self.p_oo[i] = oo + q_off
                i += 1

    def observe(self, observed: float, noise_var: float) -> list[float] | None:
        """Correct every cell's estimate by a reading of held + offset; returns each cell's
        log-likelihood of it. None the first time (it only starts the estimates), and None
        for a reading that no cell explains within ``OUTLIER_SIGMAS`` (``rejected``): a
        sensor stuck at its range's end must not drag the count to the capacity."""
        if not self.known:
            self._start(observed, noise_var)
            self.known, self.rejected = True, False
            return None
        surprise = min(
            (observed - self.held[i] - self.offset[i]) ** 2
            / (self.p_hh[i] + 2 * self.p_ho[i] + self.p_oo[i] + noise_var)
            for i in range(self.size)
        )
        self.rejected = surprise > OUTLIER_SIGMAS**2
        if self.rejected:
            return None  # no count, under no breathing, explains it: a sensor gone wrong
        fit = []
        for i in range(self.size):
            hh, ho, oo = self.p_hh[i], self.p_ho[i], self.p_oo[i]
            to_held, to_offset = hh + ho, ho + oo  # P·Hᵀ with H = (1, 1)
            total = to_held + to_offset + noise_var
            innovation = observed - self.held[i] - self.offset[i]
            fit.append(-0.5 * innovation * innovation / total - 0.5 * math.log(total))
            k_h, k_o = to_held / total, to_offset / total
            self.held[i] += k_h * innovation
            self.offset[i] += k_o * innovation
            self.p_hh[i] = hh - k_h * to_held
            self.p_ho[i] = ho - k_h * to_offset
            self.p_oo[i] = oo - k_o * to_offset
        return fit

    def forget(self) -> None:
        self.known = False

    def _start(self, observed: float, noise_var: float) -> None:
        """Start from one reading: held = reading − offset, so the two are tied."""
        size, o = self.size, self.offset_sd**2
        self.held, self.offset = [observed] * size, [0.0] * size
        self.p_hh, self.p_ho, self.p_oo = [noise_var + o] * size, [-o] * size, [o] * size
