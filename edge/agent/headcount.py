"""A belief over how many people are inside, and over the room air each count would explain.

The count is a whole number from 0 to ``most``, and it changes only when people pass the
door. So the belief is a probability for every count (a grid filter over the count: an
exact Bayes filter, cheap at a few hundred cells): door openings *move* probability between
counts by what each opening may have been (``move``), and the rooms' sensors *weigh* each
count by how well it explains what they saw (``weigh``). Nothing sets the count: a rule that
would zero it (nobody moves) or raise it (someone moved) is one likelihood among others.

CO2 needs more than the current count: the air holds what the last half hour of breathing
put there. Each count therefore carries its own estimate of the air (``AirCells``), given the
history that led to that count; a CO2 observation weighs each count by how well its own
estimate predicted it. A count that fits the door but not the air loses weight only as fast
as the air disagrees, which is slowly: tens of minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge.agent.air_cells import AirCells

#: Probability below which a count is left out of a move (it cannot matter to the answer).
NEGLIGIBLE = 1e-12

Kernel = Callable[[int], Iterable[tuple[int, float]]]


@dataclass
class CountBelief:
    """Probabilities of each count 0..``most``, with each count's air estimate."""

    most: int
    p: list[float] = field(default_factory=list)
    air: AirCells | None = None

    def __post_init__(self) -> None:
        if self.most < 1:
            raise ValueError("a belief needs room for at least one person")
        if not self.p:
            self.p = [1.0] + [0.0] * self.most
        if len(self.p) != self.most + 1:
            raise ValueError(f"{len(self.p)} probabilities for counts 0..{self.most}")
        self.air = self.air or AirCells(self.most)
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
        sources: list[list[tuple[int, float]]] = [[] for _ in p]
        for n, pn in enumerate(self.p):
            if pn < NEGLIGIBLE:
                continue
            for change, weight in kernel(n):
                if weight <= 0:
                    continue
                to = min(max(n + change, 0), self.most)
                p[to] += pn * weight
                sources[to].append((n, pn * weight))
        if sum(p) <= 0:
            return  # what the door did fits no count at all: keep the belief as it was
        self._air.mix(sources)
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

    def air_predict(self, minutes: float, removed: float, rate: float) -> None:
        """Let ``minutes`` pass for the air; ventilation took ``removed`` person-minutes, at
        ``rate`` air changes a minute."""
        self._air.share_error(self.p)
        self._air.predict(minutes, removed, rate)

    def air_observe(self, observed: float, noise_var: float) -> None:
        """A measurement of the air's CO2 excess (person-minutes) with variance ``noise_var``:
        weigh each count by its prediction's fit (the first one only starts the estimates)."""
        fit = self._air.observe(observed, noise_var)
        if fit is not None:
            top = max(fit)
            self.weigh(lambda n: math.exp(fit[n] - top))

    def forget_air(self) -> None:
        """The air can no longer be followed (a sensor failed, readings stopped)."""
        self._air.forget()

    @property
    def _air(self) -> AirCells:
        assert self.air is not None
        return self.air

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
