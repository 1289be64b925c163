"""Door unavailability during one door's update (issue 17): taps all through the switch.

Run: ``.venv/bin/python benchmarks/update_handover.py``. Prints figures, asserts nothing.

One door of a TLS network (tests.support.fleet: the shipped commands, the launcher, a real
release of hafen built here) has cards presented one after another, a new one as soon as
the last was read: about every 21 ms, the reader's poll interval, more often than the 50 ms
the issue asks. (A pause between cards longer than that interval makes nfcpy's UDP reader
wait a whole second for the answer to a poll no card heard: the emulation's, not the
door's.) A tap's wait is from its card being presented to the reader having read it; the
door decides at once after (tap-to-relay is ``edge_access.py``'s figure). First without an
update (the baseline), then while a rollout updates the door: the longest wait beyond the
baseline's median is the time in which a tap would not have been decided. The door's own
log gives the gap between the old version letting go of the reader and the new one
reading, as a cross-check; every tap read must reach the hub as a decision, once.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import _path  # noqa: F401  (the project on sys.path)

from hub.services.rollout_models import RolloutIn
from hub.services.rollout_reads import get_rollout
from hub.services.rollouts import create_rollout
from tests.support.fleet import RUNNING, Fleet, Taps, events_of
from tests.support.rollouts import ADMIN
from tests.support.waiting import wait_for

NEW = "0.1.1"
#: The next card at once: the emulated card's own pace is the reader's poll interval.
EVERY = 0.0
BASELINE_SECONDS = 20.0


def waits(taps: Taps) -> list[float]:
    return [(read - started) * 1000 for started, read in taps.read]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def summary(name: str, values: list[float], seconds: float) -> str:
    return (
        f"{name:<26} n={len(values):4d} ({len(values) / seconds:5.1f} taps/s)"
        f"  p50 {statistics.median(values):6.1f} ms  p99 {p99(values):6.1f} ms"
        f"  max {max(values):6.1f} ms"
    )


def log_gap(log: str) -> float | None:
    """From the old version's "door agent stopped" to the new one's "door agent running"."""
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
    stopped = re.findall(stamp + r" INFO edge: door agent stopped", log)
    running = re.findall(stamp + r" INFO edge: door agent running", log)
    if not stopped or len(running) < 2:
        return None
    parse = lambda text: datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    before = parse(stopped[0])
    after = min((parse(t) for t in running if parse(t) >= before), default=None)
    return None if after is None else (after - before).total_seconds() * 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hafen-bench-") as tmp:
        fleet = Fleet(Path(tmp))
        try:
            door = fleet.door("front-door")
            wait_for(lambda: fleet.software("front-door") == RUNNING, 30)
            started = time.monotonic()
            fleet.release(NEW)
            print(f"release {NEW} built and added in {time.monotonic() - started:.1f} s")
            baseline = Taps(door.card, every=EVERY).start()
            time.sleep(BASELINE_SECONDS)
            baseline.stop()
            tapping = time.monotonic()
            during = Taps(door.card, every=EVERY).start()
            engine = fleet.network.engine
            begun = time.monotonic()
            rollout = create_rollout(engine, ADMIN, RolloutIn(version=NEW, stages="100%"))
            wait_for(lambda: get_rollout(engine, ADMIN, rollout.id).state == "done", 300)
            took = time.monotonic() - begun
            time.sleep(2.0)
            during.stop()
            tapped = time.monotonic() - tapping
            reads = len(baseline.read) + len(during.read)
            wait_for(lambda: len(events_of(fleet, "front-door", "door.decision")) >= reads, 60)
            decided = events_of(fleet, "front-door", "door.decision")
            seqs = {event["seq"] for event in decided}
            base, update = waits(baseline), waits(during)
            print(summary("wait, no update", base, BASELINE_SECONDS))
            print(summary("wait, during the update", update, tapped))
            unavailable = max(0.0, max(update) - statistics.median(base))
            print(
                "door unavailable (longest wait during the update beyond the baseline's median):"
                f" {unavailable:.0f} ms; p99 during / p99 without: {p99(update) / p99(base):.2f}"
            )
            gap = log_gap(door.log_text())
            print(f"hand-over gap in the door's log (old let go -> new reading): {gap} ms")
            print(
                f"taps read {reads}, not read {baseline.missed + during.missed}; decisions at the "
                f"hub {len(decided)} ({len(seqs)} distinct); update took {took:.1f} s"
            )
        finally:
            fleet.close()


if __name__ == "__main__":
    main()
