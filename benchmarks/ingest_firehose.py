"""Ingest rate from a firehose of C publishers: a source tree beside a baseline revision.

The figure of hafen issue 13: the ingest rate with the new checks, beside the commit before, in
the same run (the target is a ratio of at least 0.9). Python publishers would be the bottleneck,
so pre-built event lines (benchmarks/firehose_stream.py: a realistic registry and what its doors
say) are published by ``mosquitto_pub -l -q 1`` processes, four lanes per door, to a mosquitto
with the shipped settings (QoS 1 loses nothing). Each run has a fresh broker and a fresh store:

1. ``mosquitto_sub`` alone on the stream: what a consumer that stores nothing receives;
2. one ingest worker of the baseline, then of the candidate;
3. two workers (two processes, as two ``hafen hub ingest``) of the baseline, then the candidate.

All of it ``--repeat`` times (3), the order within each pair alternating; medians are printed,
and the ratio is the median of the pairs' ratios: a pair runs back to back, under alike load from
whatever else the machine does. The rate counts from the first stored event to the last (the
store polled every 20 ms); beside it, the workers' CPU time per event, which such load disturbs
far less. 60,000 events by default (``--events``): about two and a half minutes. Each
run ends with checks that fail loudly: every event stored exactly once, none dead-lettered,
each device's seqs 1..N in its epoch, its progress mark at N, and each allowed entry counted
once in the visits roll-up.

CANDIDATE is a source tree (default: this checkout, uncommitted changes included). BASELINE is a
git revision, checked out with ``git worktree add --detach`` for the run and removed after; by
default the first parent of the newest commit on the candidate's first-parent history that
touched hub/ingest (the merge of the ingest change, on main), so ``make bench`` compares the
newest ingest change with what it replaced. Give ``--baseline main`` on a branch, and
``--baseline HEAD`` to measure a tree against itself: the noise of the machine. Each tree's
store is made by its own migrations and its worker runs with ``PYTHONPATH`` set to that tree
(benchmarks/firehose_driver.py).

Run: ``.venv/bin/python benchmarks/ingest_firehose.py [--baseline REV] [--events N]
[--repeat R] [--candidate PATH] [--url POSTGRES_SERVER_URL]`` (in ``make bench``). With ``--url``
each run gets a throwaway database on that PostgreSQL server.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import _path
from firehose_runs import Run, Trees, run_subscriber, run_workers
from firehose_stream import DOORS, LANES, SITES, build

CARD_KEY = bytes.fromhex("f1e2d3c4b5a69788" * 2)
DRIVER = Path(__file__).resolve().parent / "firehose_driver.py"
#: Other work taking more than this share of the machine's CPU makes a ratio too noisy to judge.
BUSY = 0.05


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def default_baseline(repo: Path) -> str:
    """The first parent of the newest first-parent commit that touched hub/ingest."""
    last = git(repo, "log", "-1", "--first-parent", "--format=%h", "--", "hub/ingest")
    if not last:
        raise SystemExit("no commit touched hub/ingest: give --baseline REV")
    return f"{last}^1"


def describe(repo: Path, rev: str) -> str:
    return git(repo, "log", "-1", "--format=%h %s", rev)


@contextmanager
def baseline_tree(repo: Path, rev: str, parent: Path) -> Iterator[Path]:
    """A detached worktree of ``rev``, removed afterwards."""
    commit = git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    path = parent / f"baseline-{commit[:10]}"
    git(repo, "worktree", "add", "--detach", str(path), commit)
    try:
        yield path
    finally:
        git(repo, "worktree", "remove", "--force", str(path))


@dataclass
class Figures:
    """Each configuration's rates, in the order run."""

    rates: dict[str, list[float]] = field(default_factory=dict)
    drains: dict[str, list[float]] = field(default_factory=dict)
    cpus: dict[str, list[float]] = field(default_factory=dict)
    published: list[float] = field(default_factory=list)

    def add(self, name: str, run: Run) -> None:
        self.rates.setdefault(name, []).append(run.rate)
        if run.drain is not None:
            self.drains.setdefault(name, []).append(run.drain)
        if run.cpu is not None:
            self.cpus.setdefault(name, []).append(run.cpu)
        self.published.append(run.published)

    def median(self, name: str) -> float:
        return statistics.median(self.rates[name])

    def ratio(self, name: str, baseline: str) -> float:
        """The median of each repetition's ratio: the two ran back to back, under alike load
        from anything else on the machine, which drifts over minutes."""
        pairs = zip(self.rates[name], self.rates[baseline], strict=True)
        return statistics.median(c / b for c, b in pairs)


class OtherWork:
    """How much of the machine's CPU went to anything but this benchmark and its children.

    The load average cannot tell: this run's own publishers make it 5 on two cores. The
    kernel's busy time (/proc/stat) less this process's and its waited-for children's CPU
    time (workers, publishers, brokers, mosquitto_sub) is what everything else took.
    """

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        with open("/proc/stat") as stat:
            # user nice system idle iowait irq softirq steal (guest time is within user)
            ticks = [int(v) for v in stat.readline().split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
        own = sum(
            usage.ru_utime + usage.ru_stime
            for usage in (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
        )
        return busy, own, time.monotonic()

    def share(self) -> float:
        """The share of all cores' time since the start that went to other work."""
        busy, own, at = self._now()
        other = (busy - self._start[0]) - (own - self._start[1])
        return max(0.0, other) / ((at - self._start[2]) * (os.cpu_count() or 1))


def plan(repeat: int) -> Iterator[tuple[str, str | None, int]]:
    """(label, tree, workers) in the order run: pairs alternate which tree goes first."""
    for r in range(repeat):
        yield "mosquitto_sub", None, 0
        for workers in (1, 2):
            pair = ["baseline", "candidate"] if r % 2 == 0 else ["candidate", "baseline"]
            for tree in pair:
                yield f"{workers}w {tree}", tree, workers


def report(
    figures: Figures,
    hose_total: int,
    per_device: int,
    trees_text: tuple[str, str],
    store: str,
    other_work: float,
) -> None:
    runs = len(figures.rates["mosquitto_sub"])
    print(
        f"Ingest from a firehose (hafen issue 13): {hose_total:,} events from"
        f" {len(SITES) * len(DOORS)} doors at {len(SITES)} sites (seqs 1..{per_device:,} each),"
        f" {len(SITES) * len(DOORS) * len(LANES)} mosquitto_pub -l -q 1 processes; {store};"
        f" {'median of ' + str(runs) + ' runs' if runs > 1 else 'one run'} each:"
    )
    print(f"  baseline  {trees_text[0]}")
    print(f"  candidate {trees_text[1]}")

    print(f"  {'':<22}{'events/s':>9}{'ratio':>7}{'CPU µs/event':>14}{'drain s':>9}   runs")

    def row(label: str, name: str, paired_with: str | None = None) -> None:
        rates = figures.rates[name]
        ratio = f"{figures.ratio(name, paired_with):.2f}" if paired_with else ""
        cpu = f"{statistics.median(figures.cpus[name]):.0f}" if name in figures.cpus else ""
        drain = f"{statistics.median(figures.drains[name]):.1f}" if name in figures.drains else ""
        runs = "  ".join(f"{r:,.0f}" for r in rates)
        print(f"  {label:<22}{figures.median(name):>9,.0f}{ratio:>7}{cpu:>14}{drain:>9}   {runs}")

    row("mosquitto_sub", "mosquitto_sub")
    for w in (1, 2):
        label = "1 worker " if w == 1 else "2 workers"
        row(f"{label} baseline", f"{w}w baseline")
        row(f"{label} candidate", f"{w}w candidate", paired_with=f"{w}w baseline")
    print("  ratio: candidate/baseline, the median over the pairs run back to back (alike load)")
    print("  CPU: the workers' CPU time (all threads) per event stored")
    print("  drain: from the last publisher done to the last event stored")
    print(
        f"  publishers: {statistics.median(figures.published):,.0f} events/s into the broker"
        " (median over all runs)"
    )
    print(f"  command: {shlex.join([sys.executable, *sys.argv])}")
    # Other work on the machine moves the wall-clock rates far more than the CPU per event.
    other = f"other work took {other_work:.0%} of its CPU meanwhile"
    print(f"(machine: {os.cpu_count()} cores, {other}; Python {sys.version.split()[0]})")
    if other_work > BUSY:
        print(
            "  The machine was busy with other work: with a test suite running beside it,"
            " identical trees (--baseline HEAD)\n  gave ratios from 0.85 to 1.18. Run it again"
            " when nothing else runs before trusting a ratio near 0.9."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="git revision (default: see the module docstring)")
    parser.add_argument("--candidate", type=Path, default=_path.ROOT, help="source tree")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--url", help="PostgreSQL server: a fresh database per run on it")
    args = parser.parse_args()
    if args.events < len(SITES) * len(DOORS) * len(LANES) or args.repeat < 1:
        parser.error("--events must be at least one per publisher lane, --repeat at least 1")
    for tool in ("mosquitto_pub", "mosquitto_sub", "git"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (make setup installs it)")
    candidate = args.candidate.resolve()
    rev = args.baseline or default_baseline(candidate)
    baseline_text = f"{describe(candidate, rev)}  ({rev})"
    head = describe(candidate, "HEAD")
    dirty = git(candidate, "status", "--porcelain", "--", "hub", "hafen")
    candidate_text = f"{candidate}  (HEAD {head}{', with uncommitted changes' if dirty else ''})"
    store = "PostgreSQL" if args.url else "SQLite synchronous=FULL"
    other_work = OtherWork()
    hose = build(args.events, CARD_KEY)
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="hafen-firehose-") as name, ExitStack() as stack:
        tmp = Path(name)
        lanes = hose.write(tmp / "stream")
        base = stack.enter_context(baseline_tree(candidate, rev, tmp))
        trees = Trees(candidate, base, DRIVER, CARD_KEY, tmp / "stream" / "registry.json")
        for k, (label, tree, workers) in enumerate(plan(args.repeat)):
            run_dir = tmp / f"run-{k:02d}"
            if tree is None:
                run = run_subscriber(run_dir, lanes, hose.total)
            else:
                run = run_workers(run_dir, lanes, hose, trees.path(tree), workers, trees, args.url)
            print(f"  ... {label}: {run.rate:,.0f} events/s", file=sys.stderr, flush=True)
            figures.add(label, run)
    report(
        figures,
        hose.total,
        hose.per_device,
        (baseline_text, candidate_text),
        store,
        other_work.share(),
    )


if __name__ == "__main__":
    main()
