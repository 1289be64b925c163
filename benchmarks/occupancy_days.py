"""Occupancy estimator accuracy on the harder simulated days of ``sim/people_days.py``.

The days are written apart from the estimator (issue 15): still sitters, groups on one tap,
doors opened from inside for couriers and guests, an event with a propped door, a cleaner,
stays past closing, false PIR triggers at night, PIRs held on by a busy room, CO2 from
breathing, and a two-beam counter that misses close followers. Each kind of day is drawn from
``--seeds`` seeds and replayed through the estimator by its public inputs
(``sim/people_replay.py``), with the signals a site may have.

Prints, per kind: mean absolute error over all minutes, error and bias (estimate minus truth)
over the minutes someone is there, presence right, worst minute, drops to zero with people
inside, and the share of minutes whose truth lay in the stated 90 % interval. Then what each
signal adds; the calibration of the stated confidence (the chance of being within one); the
cost of a replayed day beside the door-only estimator; what a room air set wrong in the
config costs; and, unless ``--no-ablation``, the same with one behaviour of the days switched
off at a time.
Run: ``.venv/bin/python benchmarks/occupancy_days.py [--seeds N] [--first-seed S]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import dataclass, replace

import _path  # noqa: F401  (the project root on sys.path)

from sim.people_days import BEHAVIOURS, DAY_TYPES, Behaviours, make_world
from sim.people_replay import WITHOUT_COUNTER, Minute, replay_world

LABELS = {
    "quiet": "quiet (3-8 people)",
    "typical": "typical (10-20)",
    "event": "busy event (30-45 in minutes)",
    "still": "long still (6 at desks)",
}
VARIANTS = {
    "door only": frozenset({"door"}),
    "door + PIR": frozenset({"door", "pir"}),
    "door + PIR + CO2": WITHOUT_COUNTER,
    "door + PIR + CO2 + counter": frozenset({"door", "pir", "co2", "counter"}),
}
#: Bands of stated confidence for the calibration table.
BANDS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.01))


@dataclass(frozen=True)
class Score:
    mae: float
    occupied_error: float
    bias: float
    presence: float
    worst: int
    zero_drops: int
    covered: float  # share of minutes whose truth lay in the stated 90 % interval


def score(days: list[list[Minute]]) -> Score:
    minutes = [m for day in days for m in day]
    occupied = [m for m in minutes if m.truth > 0]
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
        covered=sum(m.low <= m.truth <= m.high for m in minutes) / len(minutes),
    )


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


def replay_days(
    kind: str, seeds: range, signals: frozenset[str], behaviours: Behaviours | None = None
) -> tuple[list[list[Minute]], list[float]]:
    """The days of ``kind`` replayed, and the seconds each replay took."""
    days, seconds = [], []
    for seed in seeds:
        world = make_world(kind, seed, behaviours)
        start = time.perf_counter()
        days.append(replay_world(world, signals))
        seconds.append(time.perf_counter() - start)
    return days, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--no-ablation", action="store_true")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"harder days, seeds {seeds.start}-{seeds.stop - 1} per kind; door + PIR + CO2\n")
    print(
        f"{'day':30} {'MAE':>5} {'occupied err / bias':>20} {'presence':>9} {'worst':>6}"
        f" {'drops to 0 w/ people':>21} {'in 90 % interval':>17}"
    )
    runs: dict[tuple[str, str], tuple[list[list[Minute]], list[float]]] = {}
    for variant, signals in VARIANTS.items():
        for kind in DAY_TYPES:
            runs[variant, kind] = replay_days(kind, seeds, signals)
    for kind in DAY_TYPES:
        s = score(runs["door + PIR + CO2", kind][0])
        print(
            f"{LABELS[kind]:30} {s.mae:5.2f} {s.occupied_error:11.2f} / {s.bias:+5.2f}"
            f" {s.presence:9.1%} {s.worst:6d} {s.zero_drops:21d} {s.covered:17.1%}"
        )
    print("\nwhat each signal adds: MAE / presence / worst minute, per kind")
    print(f"{'signals':28}" + "".join(f" {kind:>20}" for kind in DAY_TYPES))
    for variant in VARIANTS:
        cells = []
        for kind in DAY_TYPES:
            s = score(runs[variant, kind][0])
            cells.append(f"{s.mae:.2f} / {s.presence:.1%} / {s.worst}")
        print(f"{variant:28}" + "".join(f" {c:>20}" for c in cells))
    every = [day for kind in DAY_TYPES for day in runs["door + PIR + CO2", kind][0]]
    print("\ncalibration, all kinds: stated confidence (within one) against how often it held")
    print(f"{'stated':>12} {'minutes':>8} {'mean stated':>12} {'held':>6}")
    for band, count, stated, held in calibration(every):
        print(f"{band:>12} {count:8d} {stated:12.3f} {held:6.3f}")
    print(f"truth within the stated 90 % interval: {score(every).covered:.1%} of all minutes")
    print("\ncost of replaying one day (1440 ticks and every signal), beside the door alone:")
    base = [t for kind in DAY_TYPES for t in runs["door only", kind][1]]
    for variant in VARIANTS:
        took = sorted(t for kind in DAY_TYPES for t in runs[variant, kind][1])
        p50, p99 = statistics.median(took), took[min(len(took) - 1, int(0.99 * len(took)))]
        print(
            f"  {variant:28} p50 {p50 * 1000:6.0f} ms  p99 {p99 * 1000:6.0f} ms"
            f"  {len(took) / sum(took):5.1f} days/s  x{p50 / statistics.median(base):.1f}"
        )
    print("\nroom air set wrong in the config (door + PIR + CO2): MAE / in 90 % interval")
    print(f"{'volume x, air changes x':28}" + "".join(f" {kind:>20}" for kind in DAY_TYPES))
    for air_set in ((1.0, 1.0), (1.5, 0.5), (0.7, 1.5)):
        cells = []
        for kind in DAY_TYPES:
            days = [replay_world(make_world(kind, seed), air_set=air_set) for seed in seeds]
            s = score(days)
            cells.append(f"{s.mae:.2f} / {s.covered:.1%}")
        label = f"{air_set[0]:g}, {air_set[1]:g}"
        print(f"{label:28}" + "".join(f" {c:>20}" for c in cells))
    if args.no_ablation:
        return
    print("\nablation: one behaviour off; MAE / bias while occupied / drops to 0, per kind")
    print(f"{'switched off':24}" + "".join(f" {kind:>22}" for kind in DAY_TYPES))
    for name in BEHAVIOURS:
        off = replace(Behaviours(), **{name: False})
        cells = []
        for kind in DAY_TYPES:
            s = score(replay_days(kind, seeds, WITHOUT_COUNTER, off)[0])
            cells.append(f"{s.mae:.2f} / {s.bias:+.2f} / {s.zero_drops:d}")
        print(f"{name:24}" + "".join(f" {c:>22}" for c in cells))


if __name__ == "__main__":
    main()
