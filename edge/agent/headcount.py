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

from edge.agent.air_cells import BREATHING, AirCells

#: Probability below which a count is left out of a move (it cannot matter to the answer).
NEGLIGIBLE = 1e-12
#: After this many observations in a row that no count explains, the air starts anew.
REJECTED_BEFORE_RESTART = 5
#: The breathing error's weights drift back toward the prior over about this many hours.
BREATHING_HOURS = 3.0

Kernel = Callable[[int], Iterable[tuple[int, float]]]


@dataclass
class CountBelief:
    """Probabilities of each count 0..``most``, jointly with the site's breathing error
    (``air_cells.BREATHING``), and each pair's air estimate."""

    most: int
    p: list[float] = field(default_factory=list)
    air: AirCells | None = None
    #: CO2 observations rejected in a row (see ``AirCells.observe``).
    air_rejected: int = 0
    #: joint[k·(most+1) + n]: breathing error k, count n
    joint: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.most < 1:
            raise ValueError("a belief needs room for at least one person")
        p = self.p or [1.0] + [0.0] * self.most
        if len(p) != self.most + 1:
            raise ValueError(f"{len(p)} probabilities for counts 0..{self.most}")
        self.air = self.air or AirCells(self.most)
        self.joint = [w * pn for _, w in BREATHING for pn in p]
        self._settle(self.joint)

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
        to the others. Changes that would leave 0..``most`` are held at the bounds. The
        breathing error is the site's, and a door does not change it.
        """
        width = self.most + 1
        tables = [
            [(min(max(n + c, 0), self.most), w) for c, w in kernel(n) if w > 0]
            if self.p[n] >= NEGLIGIBLE
            else []
            for n in range(width)
        ]
        joint = [0.0] * len(self.joint)
        sources: list[list[tuple[int, float]]] = [[] for _ in joint]
        for base in range(0, len(joint), width):
            for n, table in enumerate(tables):
                pn = self.joint[base + n]
                if pn <= 0:
                    continue
                for to, weight in table:
                    joint[base + to] += pn * weight
                    sources[base + to].append((base + n, pn * weight))
        if sum(joint) <= 0:
            return  # what the door did fits no count at all: keep the belief as it was
        self._air.mix(sources)
        self.joint = joint
        self._settle(joint)

    # -- what the rooms saw ----------------------------------------------------------------
    def weigh(self, likelihood: Callable[[int], float]) -> None:
        """Multiply each count's probability by how likely it makes what was seen."""
        width = self.most + 1
        by_count = [likelihood(n) for n in range(width)]
        weighed = [pk * by_count[i % width] for i, pk in enumerate(self.joint)]
        if sum(weighed) <= 0:
            return  # evidence no count can explain (a sensor gone mad): ignore it
        self.joint = weighed
        self._settle(weighed)

    def air_predict(self, minutes: float, removed: float, rate: float) -> None:
        """Let ``minutes`` pass for the air; ventilation took ``removed`` person-minutes, at
        ``rate`` air changes a minute. The breathing error may change over hours (a talk,
        then mingling): each class gives a little of its weight back to the prior."""
        self._air.predict(minutes, removed, rate)
        share = 1 - math.exp(-minutes / (BREATHING_HOURS * 60))
        width = self.most + 1
        for k, (_, prior) in enumerate(BREATHING):
            for n in range(width):
                i = k * width + n
                mass = self.joint[i]
                self.joint[i] = (1 - share) * mass + share * prior * self.p[n]
        self._settle(self.joint)

    def air_observe(self, observed: float, noise_var: float) -> None:
        """A measurement of the air's CO2 excess (person-minutes) with variance ``noise_var``:
        weigh each (error, count) by its prediction's fit (the first only starts the air)."""
        air = self._air
        fit = air.observe(observed, noise_var)
        if fit is None:
            self.air_rejected = self.air_rejected + 1 if air.rejected else 0
            if self.air_rejected >= REJECTED_BEFORE_RESTART:
                air.forget()  # the air moved for good (a sensor replaced): follow it anew
                self.air_rejected = 0
            return
        self.air_rejected = 0
        top = max(fit)
        weighed = [pk * math.exp(f - top) for pk, f in zip(self.joint, fit, strict=True)]
        if sum(weighed) > 0:
            self.joint = weighed
            self._settle(weighed)

    def forget_air(self) -> None:
        """The air can no longer be followed (a sensor failed, readings stopped)."""
        self._air.forget()

    @property
    def breathing(self) -> dict[float, float]:
        """The weight of each breathing error, as learnt so far."""
        width = self.most + 1
        return {
            error: sum(self.joint[k * width : (k + 1) * width])
            for k, (error, _) in enumerate(BREATHING)
        }

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

    def _settle(self, joint: list[float]) -> None:
        """Normalise the joint and keep the counts' marginal in ``p``.

        No floor under small probabilities: a floor would let a count that the evidence keeps
        pushing down bounce back every step and outgrow the ones it weighs fairly. What keeps
        a count reachable is the door's tables and the closed-hours drift."""
        total = sum(joint)
        for i, pk in enumerate(joint):
            joint[i] = pk / total
        width = self.most + 1
        self.p = [sum(joint[n::width]) for n in range(width)]
