"""Time-weighting occupancy samples: one device's step function integrated over buckets.

A sample holds until the device's next one, for at most ``HOLD``: a device that went quiet is
unknown, not empty. The live history, the hourly roll-up and the reports all weigh samples
this one way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub import db

#: How long a sample stands for its device when no newer one came.
HOLD = timedelta(minutes=10)


@dataclass
class Cell:
    """One device's share of one bucket."""

    person_seconds: float = 0.0
    occupied_seconds: float = 0.0
    known_seconds: float = 0.0
    peak: int | None = None


def integrate(samples: Sequence[Any], edges: list[datetime], until: datetime) -> list[Cell]:
    """Cells for the buckets between consecutive ``edges`` (aware UTC), from one device's
    samples in time order (rows with ``at``, ``count`` and ``present``)."""
    n = len(edges) - 1
    cells = [Cell() for _ in range(n)]
    for i, s in enumerate(samples):
        at = db.aware(s.at)
        nxt = db.aware(samples[i + 1].at) if i + 1 < len(samples) else until
        end = min(nxt, at + HOLD, until)
        k = max(bisect_right(edges, at) - 1, 0)
        while k < n and edges[k] < end:
            overlap = (min(end, edges[k + 1]) - max(at, edges[k])).total_seconds()
            if overlap > 0:
                cell = cells[k]
                cell.person_seconds += s.count * overlap
                cell.occupied_seconds += overlap if s.present else 0.0
                cell.known_seconds += overlap
                cell.peak = max(cell.peak or 0, s.count)
            k += 1
    return cells
