"""Occupancy estimator accuracy on scripted days with known ground truth.

For each scripted day (quiet, busy with 40 people, tailgating and forgotten exits) prints the
mean absolute error of the headcount per minute and the share of minutes where presence
(anyone there or not) is right; beside it the same for the door alone (no PIR, no closing
time), and the spread over 20 random days of each kind.
Run: ``.venv/bin/python benchmarks/occupancy_accuracy.py``.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from edge.agent.occupancy import OccupancySettings
from sim.occupancy_script import ROOMS, make_day, replay, scripted_days

KINDS: dict[str, dict[str, Any]] = {
    "quiet": dict(people=6),
    "busy": dict(people=40, tailgating=0.03, handle=0.1, group=0.05),
    "messy": dict(people=30, tailgating=0.15, handle=0.2, group=0.15, let_in=0.05),
}


def main() -> None:
    print(f"{'day':46} {'MAE':>6} {'presence':>9} {'worst':>6}   door only: MAE / presence")
    for day in scripted_days():
        full = replay(day)
        door_only = replay(
            day,
            replace(
                OccupancySettings(capacity=day.capacity, timezone=day.start.tzinfo),  # type: ignore[arg-type]
                rooms=(),
            ),
        )
        print(
            f"{day.name:46} {full.mae:6.2f} {full.presence:9.1%} {full.worst:6d}"
            f"   {door_only.mae:.2f} / {door_only.presence:.1%}"
        )
    print("\nspread over 20 random days of each kind (mean / worst day):")
    for kind, params in KINDS.items():
        results = [replay(make_day(kind, seed=100 + i, **params), seed=i) for i in range(20)]
        maes = [r.mae for r in results]
        presence = [r.presence for r in results]
        print(
            f"  {kind:6} MAE {statistics.mean(maes):.2f} / {max(maes):.2f}   "
            f"presence {statistics.mean(presence):.1%} / {min(presence):.1%}"
        )
    print(
        f"(rooms with PIR: {', '.join(ROOMS)}; one PIR trigger per person every 4 min on average)"
    )


if __name__ == "__main__":
    main()
