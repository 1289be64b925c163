"""A belief over how many people are inside, and over the room air each count would explain.

The count is a whole number from 0 to ``most``, and it changes only when people pass the
door. So the belief is a probability for every count (a grid filter over the count: an
exact Bayes filter, cheap at a few hundred cells): door openings *move* probability between
counts by what each opening may have been (``move``), and the rooms' sensors *weigh* each
count by how well it explains what they saw (``weigh``). Nothing sets the count: a rule that
would zero it (nobody moves) or raise it (someone moved) is one likelihood among others.

CO2 needs more than the current count: the air holds what the last half hour of breathing
put there. Each count therefore carries its own Gaussian estimate of the air's CO2 excess
(in person-minutes: what one person breathes out in a minute) given the history that led to
that count; when a door opening moves probability from one count to another, the air
estimates are merged by their weights (the interacting-multiple-model trick, as in tracking
filters). A CO2 observation then weighs each count by how well its own air estimate predicted
it, and corrects that estimate (a Kalman update per count). A count that fits the door but
not the air loses weight only as fast as the air disagrees, which is slowly: tens of minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: Probability below which a count is left out of a move (it cannot matter to the answer).
NEGLIGIBLE = 1e-12

Kernel = Callable[[int], Iterable[tuple[int, float]]]


@dataclass
class CountBelief:
    """Probabilities of each count 0..``most``, with each count's air estimate."""

    most: int
    p: list[float] = field(default_factory=list)
    air_mean: list[float] = field(default_factory=list)
    air_var: list[float] = field(default_factory=list)
    air_known: bool = False

    def __post_init__(self) -> None:
        if self.most < 1:
            raise ValueError("a belief needs room for at least one person")
        if not self.p:
            self.p = [1.0] + [0.0] * self.most
        if len(self.p) != self.most + 1:
            raise ValueError(f"{len(self.p)} probabilities for counts 0..{self.most}")
        self.air_mean = self.air_mean or [0.0] * (self.most + 1)
        self.air_var = self.air_var or [0.0] * (self.most + 1)
        self._normalise(self.p)

    @classmethod
    def unknown(cls, most: int, empty: float = 0.5, mean_if_not: float = 4.0) -> CountBelief:
        """The belief of a door that has just started and knows nothing yet: empty with
        probability ``empty``, else a few people (geometric with mean ``mean_if_not``)."""
        keep = mean_if_not / (1 + mean_if_not)
        rest = [(1 - empty) * (1 - keep) * keep ** (n - 1) for n in range(1, most + 1)]
        return cls(most, [empty, *rest])

    # -- what the door did -----------------------------------------------------------------
    def move(self, kernel: Kernel) -> None:
        """Pass every count ``n`` through ``kernel(n)``: pairs (change, weight).

        Weights need not sum to one: a count from which what the door did is unlikely (an
        exit button pressed with nobody inside) gives little weight, and so loses probability
        to the others. Changes that would leave 0..``most`` are held at the bounds.
        """
        p = [0.0] * (self.most + 1)
        w_mean = [0.0] * (self.most + 1)
        w_sq = [0.0] * (self.most + 1)
        for n, pn in enumerate(self.p):
            if pn < NEGLIGIBLE:
                continue
            mean, var = self.air_mean[n], self.air_var[n]
            for change, weight in kernel(n):
                if weight <= 0:
                    continue
                to = min(max(n + change, 0), self.most)
                w = pn * weight
                p[to] += w
                w_mean[to] += w * mean
                w_sq[to] += w * (var + mean * mean)
        if sum(p) <= 0:
            return  # what the door did fits no count at all: keep the belief as it was
        for to, w in enumerate(p):
            if w > 0:
                mean = w_mean[to] / w
                self.air_mean[to] = mean
                self.air_var[to] = max(0.0, w_sq[to] / w - mean * mean)
        self.p = p
        self._normalise(self.p)

    # -- what the rooms saw ----------------------------------------------------------------
    def weigh(self, likelihood: Callable[[int], float]) -> None:
        """Multiply each count's probability by how likely it makes what was seen."""
        weighed = [pn * likelihood(n) for n, pn in enumerate(self.p)]
        if sum(weighed) <= 0:
            return  # evidence no count can explain (a sensor gone mad): ignore it
        self.p = weighed
        self._normalise(self.p)

    def air_predict(self, minutes: float, removed: float, spread: Callable[[int], float]) -> None:
        """Let ``minutes`` pass for the air: each count ``n`` breathes ``n`` person-minutes a
        minute into it; ventilation took ``removed`` person-minutes out (the same for every
        count: it follows from the measured air); ``spread(n)`` is the variance added per
        minute (people breathe at different rates; the ventilation is not exactly known)."""
        if not self.air_known:
            return
        for n in range(self.most + 1):
            self.air_mean[n] += n * minutes - removed
            self.air_var[n] += spread(n) * minutes

    def air_observe(self, observed: float, noise_var: float) -> None:
        """A measurement of the air's CO2 excess (person-minutes) with variance ``noise_var``:
        weigh each count by its prediction's fit, then correct each count's estimate."""
        if not self.air_known:
            self.air_mean = [observed] * (self.most + 1)
            self.air_var = [noise_var] * (self.most + 1)
            self.air_known = True
            return
        fit = []
        for n in range(self.most + 1):
            total = self.air_var[n] + noise_var
            innovation = observed - self.air_mean[n]
            fit.append(-0.5 * innovation * innovation / total - 0.5 * math.log(total))
            gain = self.air_var[n] / total
            self.air_mean[n] += gain * innovation
            self.air_var[n] *= 1 - gain
        top = max(fit)
        self.weigh(lambda n: math.exp(fit[n] - top))

    def forget_air(self) -> None:
        """The air can no longer be followed (a sensor failed, readings stopped)."""
        self.air_known = False

    # -- reading it ------------------------------------------------------------------------
    def quantile(self, share: float) -> int:
        """The smallest count with at least ``share`` of the probability at or below it."""
        total = 0.0
        for n, pn in enumerate(self.p):
            total += pn
            if total >= share - 1e-12:
                return n
        return self.most

    @property
    def median(self) -> int:
        return self.quantile(0.5)

    def interval(self, share: float = 0.9) -> tuple[int, int]:
        """The central interval holding ``share`` of the probability."""
        tail = (1 - share) / 2
        return self.quantile(tail), self.quantile(1 - tail)

    def within(self, count: int, distance: int = 1) -> float:
        """The probability that the true count is within ``distance`` of ``count``."""
        return sum(self.p[max(0, count - distance) : count + distance + 1])

    @property
    def empty(self) -> float:
        """The probability that nobody is inside."""
        return self.p[0]

    @staticmethod
    def _normalise(p: list[float]) -> None:
        # No floor under small probabilities: a floor would let a count that the evidence
        # keeps pushing down bounce back every step and outgrow the ones it weighs fairly.
        # What keeps a count reachable is the door's tables and the closed-hours drift.
        total = sum(p)
        for n, pn in enumerate(p):
            p[n] = pn / total
