"""A room's air changes an hour, learnt from its own air while nobody is there.

With nobody breathing in a room, its CO2 above outdoor falls by the same share every minute:
excess(t) = excess(0) · exp(−changes · t / 60). So the slope of the logarithm of the excess
over an empty half hour *is* the air changes an hour, measured. Evenings after the last person
left teach the rate while open, nights and weekends the rate while closed. A fit counts only
when the excess stayed well above the sensor's noise; the learnt rate is used once a few
fits agree, and never beyond a factor of four from what the config says (a window opened
wide for one evening should not retrain the room for good).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

#: The excess (ppm) below which readings are too close to outdoor air to fit.
MIN_EXCESS_PPM = 30.0
#: How long an empty stretch one fit takes (minutes), and how many readings it needs.
FIT_MINUTES, FIT_READINGS = 30.0, 20
#: Fits needed before the learnt rate replaces the configured one; how far it may stray.
FITS_BEFORE_USE, MOST_FACTOR = 2, 4.0
#: Each new fit moves the learnt rate this share of the way.
LEARNING_RATE = 0.3


@dataclass
class DecayLearner:
    """Learns one room's air changes an hour for one state (open or closed)."""

    configured: float
    learnt: float | None = None
    fits: int = 0
    _start: datetime | None = None
    _points: list[tuple[float, float]] = field(default_factory=list)

    def reading(self, at: datetime, excess_ppm: float, empty: bool) -> None:
        """A reading of the room's CO2 above outdoor; ``empty``: surely nobody inside."""
        if not empty:
            self._start, self._points = None, []
            return
        if self._start is None:
            self._start = at
        minutes = (at - self._start).total_seconds() / 60
        self._points.append((minutes, excess_ppm))
        if minutes >= FIT_MINUTES and len(self._points) >= FIT_READINGS:
            self._fit()
            self._start, self._points = None, []

    def _fit(self) -> None:
        """Weighted least squares of log(excess) on time: a reading's log is as noisy as its
        noise over its excess, so each weighs by its excess squared."""
        first = self._points[: max(3, len(self._points) // 6)]
        if sum(x for _, x in first) / len(first) < MIN_EXCESS_PPM:
            return  # too close to outdoor air from the start: the noise would be the fit
        points = [(t, math.log(x), x * x) for t, x in self._points if x > 1.0]
        total = sum(w for _, _, w in points)
        if len(points) < FIT_READINGS or total <= 0:
            return
        mean_t = sum(w * t for t, _, w in points) / total
        mean_y = sum(w * y for _, y, w in points) / total
        spread = sum(w * (t - mean_t) ** 2 for t, _, w in points)
        if spread <= 0:
            return
        slope = sum(w * (t - mean_t) * (y - mean_y) for t, y, w in points) / spread
        changes = -slope * 60
        if not self.configured / MOST_FACTOR <= changes <= self.configured * MOST_FACTOR:
            return  # a door or window left open, a sensor moved: not this room's rate
        self.learnt = (
            changes
            if self.learnt is None
            else self.learnt + LEARNING_RATE * (changes - self.learnt)
        )
        self.fits += 1

    @property
    def changes(self) -> float:
        """The air changes an hour to use: learnt once enough fits agree, else configured."""
        if self.learnt is not None and self.fits >= FITS_BEFORE_USE:
            return self.learnt
        return self.configured
