"""Occupancy estimator accuracy on the harder simulated days of ``sim/people_days.py``.

The days are written apart from the estimator (issue 15): still sitters, groups on one tap,
doors opened from inside for couriers and guests, an event with a propped door, a cleaner,
stays past closing, false PIR triggers at night, PIRs held on by a busy room, CO2 from
breathing. Each kind of day is drawn from 10 seeds and replayed through the current estimator
by its public inputs (``sim/people_replay.py``). Per kind: mean absolute error over all
minutes, error and bias (estimate minus truth) over the minutes someone is there, presence
right, worst minute, drops to zero with people inside, and how many of the minutes off by two
or more claimed full confidence. Then the same with one behaviour switched off at a time.
Run: ``.venv/bin/python benchmarks/occupancy_days.py [--seeds N] [--no-ablation]``.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass, replace

import _path  # noqa: F401  (the project root on sys.path)

from sim.people_days import BEHAVIOURS, DAY_TYPES, Behaviours, make_world
from sim.people_replay import Minute, replay_world

LABELS = {
    "quiet": "quiet (3-8 people)",
    "typical": "typical (10-20)",
    "event": "busy event (30-45 in minutes)",
    "still": "long still (6 at desks)",
}


@dataclass(frozen=True)
class Score:
    mae: float
    occupied_error: float
    bias: float
    presence: float
    worst: int
    zero_drops: int
    overconfident: float  # share of minutes off by >= 2 that claimed confidence 1.0
    covered: float  # share of minutes whose truth lay in the stated 90 % interval


def score(days: list[list[Minute]]) -> Score:
    minutes = [m for day in days for m in day]
    occupied = [m for m in minutes if m.truth > 0]
    off = [m for m in minutes if abs(m.count - m.truth) >= 2]
    drops = sum(
        1
        for day in days
        for before, m in itertools.pairwise(day)
        if before.count > 0 and m.count == 0 and m.truth > 0
    )
    return Score(
        mae=sum(abs(m.count - m.truth) for m in minutes) / len(minutes),
        occupied_error=sum(abs(m.count - m.truth) for m in occupied) / max(1, len(occupied)),
        bias=sum(m.count - m.truth for m in occupied) / max(1, len(occupied)),
        presence=sum(m.present == (m.truth > 0) for m in minutes) / len(minutes),
        worst=max(abs(m.count - m.truth) for m in minutes),
        zero_drops=drops,
        overconfident=sum(m.confidence >= 0.999 for m in off) / len(off) if off else 0.0,
        covered=sum(m.low <= m.truth <= m.high for m in minutes) / len(minutes),
    )


#: Bands of stated confidence for the calibration table.
BANDS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.01))


def calibration(days: list[list[Minute]]) -> list[tuple[str, int, float, float]]:
    """Per band of stated confidence: minutes, mean stated, share truly within one."""
    rows = []
    for lo, hi in BANDS:
        band = [m for day in days for m in day if lo <= m.confidence < hi]
        if band:
            stated = sum(m.confidence for m in band) / len(band)
            held = sum(abs(m.count - m.truth) <= 1 for m in band) / len(band)
            rows.append((f"{lo:.2f}-{min(hi, 1.0):.2f}", len(band), stated, held))
    return rows


def run(kind: str, seeds: int, behaviours: Behaviours) -> Score:
    return score([replay_world(make_world(kind, seed, behaviours)) for seed in range(seeds)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--no-ablation", action="store_true")
    args = parser.parse_args()
    print(f"harder days, {args.seeds} seeds per kind; all behaviours on")
    print(
        f"{'day':30} {'MAE':>5} {'occupied err / bias':>20} {'presence':>9} {'worst':>6}"
        f" {'drops to 0 w/ people':>21} {'off>=2 at conf 1.0':>19}"
    )
    for kind in DAY_TYPES:
        s = run(kind, args.seeds, Behaviours())
        print(
            f"{LABELS[kind]:30} {s.mae:5.2f} {s.occupied_error:11.2f} / {s.bias:+5.2f}"
            f" {s.presence:9.1%} {s.worst:6d} {s.zero_drops:21d} {s.overconfident:19.0%}"
        )
    if args.no_ablation:
        return
    print("\nablation: one behaviour off; MAE / bias while occupied / drops to 0, per kind")
    print(f"{'switched off':24}" + "".join(f" {kind:>22}" for kind in DAY_TYPES))
    for name in BEHAVIOURS:
        off = replace(Behaviours(), **{name: False})
        cells = []
        for kind in DAY_TYPES:
            s = run(kind, args.seeds, off)
            cells.append(f"{s.mae:.2f} / {s.bias:+.2f} / {s.zero_drops:d}")
        print(f"{name:24}" + "".join(f" {c:>22}" for c in cells))


if __name__ == "__main__":
    main()
