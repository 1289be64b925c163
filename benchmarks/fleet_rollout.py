"""A 50-door rollout on loopback (issue 17): the canary, then 10 %, then all, with the health gate.

Run: ``.venv/bin/python benchmarks/fleet_rollout.py [DOORS]``. Prints figures, asserts nothing.

Fifty doors of a TLS network (tests.support.fleet: enrolled with the shipped commands, each
its own process started by the launcher) take a real release of hafen built here: each
downloads it from the hub with its own identity, installs it into a venv of its own, hands
its door over and passes its gate before the next stage begins. All of it shares this
machine's two cores, where each door would have a Pi of its own; so beside it, in the same
run, the raw work alone: the same number of installs of the release, two at a time, with no
hub, broker or hand-over. The ratio says what the rollout adds to the work it cannot avoid.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import _path  # noqa: F401  (the project on sys.path)

from edge.updater.installer import install_release
from hafen.releases import manifest_for
from hub.services.rollout_models import RolloutIn
from hub.services.rollout_reads import get_rollout
from hub.services.rollouts import create_rollout
from tests.support.fleet import RUNNING, Fleet, FleetDoor
from tests.support.rollouts import ADMIN
from tests.support.waiting import wait_for
from tests.support.wheelhouse import wheelhouse

NEW = "0.1.1"


def raw_installs(root: Path, doors: int) -> float:
    """The installs alone: ``doors`` venvs of the release, two at a time (two cores)."""
    wheels = wheelhouse(NEW, root / "raw-wheels")
    manifest = manifest_for(wheels, NEW, datetime.now(UTC))

    def one(n: int) -> None:
        target = root / "raw" / str(n)
        target.mkdir(parents=True)
        install_release(manifest, wheels, target)

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(doors)))
    return time.monotonic() - started


def main(doors: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hafen-bench-") as tmp:
        root = Path(tmp)
        fleet = Fleet(root / "fleet", gate_seconds=120)
        try:
            names = [f"door-{n:02d}" for n in range(1, doors + 1)]
            started = time.monotonic()
            fleet.doors = [FleetDoor(fleet, name).enrol().start(wait=False) for name in names]
            for door in fleet.doors:
                door.wait_running(120)
            wait_for(lambda: all(fleet.software(n) == RUNNING for n in names), 120)
            print(f"{doors} doors enrolled and running in {time.monotonic() - started:.0f} s")
            fleet.release(NEW)
            engine = fleet.network.engine
            begun = time.monotonic()
            asked = RolloutIn(version=NEW, stages="1,10%,100%")
            rollout = create_rollout(engine, ADMIN, asked)
            finished = wait_for(
                lambda: get_rollout(engine, ADMIN, rollout.id).state in ("done", "paused"), 900
            )
            took = time.monotonic() - begun
            detail = get_rollout(engine, ADMIN, rollout.id)
            steps = [d.step for d in detail.device_list]
            print(
                f"rollout of {NEW} to {doors} doors (stages {asked.stages}): {detail.state} in "
                f"{took:.0f} s{'' if finished else ' (gave up waiting)'}; "
                f"healthy {steps.count('healthy')}, other {len(steps) - steps.count('healthy')}"
            )
            per_door = [
                (d.step_at - d.ordered_at).total_seconds()
                for d in detail.device_list
                if d.step_at is not None and d.ordered_at is not None
            ]
            if per_door:
                ordered = sorted(per_door)
                p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
                print(
                    f"per door, ordered -> healthy: p50 {statistics.median(per_door):.1f} s, "
                    f"p99 {p99:.1f} s, max {max(per_door):.1f} s"
                )
            for stage in detail.stage_list:
                print(f"  stage {stage}")
        finally:
            fleet.close()
        raw = raw_installs(root, doors)
        print(f"raw: {doors} installs of the release, two at a time: {raw:.0f} s")
        print(f"rollout / raw installs: {took / raw:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
