"""One run of the firehose benchmark: a fresh broker and store, consumers, publishers, checks.

See benchmarks/ingest_firehose.py. Workers run as benchmarks/firehose_driver.py processes with
``PYTHONPATH`` set to the tree under test; this side only polls and checks the store with plain
SQL, so it reads any tree's store alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from firehose_stream import Firehose
from sqlalchemy import Connection, create_engine, text

from hafen import protocol
from sim.broker import LocalBroker

#: How often the store is counted while the workers fill it.
POLL = 0.02
#: A run fails when the store stops growing for this long.
STALL = 60.0


class RunFailed(SystemExit):
    """A run's checks failed: the figure would be wrong, so the benchmark stops loudly."""


@dataclass
class Run:
    rate: float  # events/s, first to last stored (or received)
    published: float  # events/s the publishers put into the broker
    drain: float | None = None  # s from the last publisher done to the last event stored
    cpu: float | None = None  # the workers' CPU µs per event stored


@dataclass
class Trees:
    candidate: Path
    baseline: Path
    driver: Path
    card_key: bytes
    registry: Path  # the registry's rows (firehose_stream.Firehose.write)

    def path(self, name: str) -> Path:
        return self.candidate if name == "candidate" else self.baseline


class Publishers:
    """One ``mosquitto_pub -l -q 1`` per lane, each reading its lane's file."""

    def __init__(self, port: int, lanes: list[tuple[str, Path]]) -> None:
        self.started = time.monotonic()
        self.procs = []
        for topic, path in lanes:
            with path.open("rb") as lines:
                self.procs.append(
                    subprocess.Popen(
                        ["mosquitto_pub", "-p", str(port), "-q", "1", "-l", "-t", topic],
                        stdin=lines,
                        stderr=subprocess.PIPE,
                    )
                )
        self.done: float | None = None

    def poll(self) -> bool:
        """True once every publisher has exited (each must exit cleanly)."""
        if self.done is None and all(p.poll() is not None for p in self.procs):
            self.done = time.monotonic()
            for p in self.procs:
                if p.returncode != 0:
                    err = p.stderr.read().decode() if p.stderr else ""
                    raise RunFailed(f"mosquitto_pub exited {p.returncode}: {err}")
        return self.done is not None

    def rate(self, total: int) -> float:
        assert self.done is not None
        return total / (self.done - self.started)

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def run_subscriber(run_dir: Path, lanes: list[tuple[str, Path]], total: int) -> Run:
    """What mosquitto_sub receives of the stream, first to last message."""
    with LocalBroker(run_dir / "broker") as broker:
        sub = subprocess.Popen(
            [
                *("mosquitto_sub", "-p", str(broker.port), "-q", "1"),
                *("-t", protocol.ALL_EVENTS, "-C", str(total), "-F", "%U"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # subscribed (mosquitto_sub says so only in its per-message debug)
        pubs = Publishers(broker.port, lanes)
        try:
            out, _ = sub.communicate(timeout=300)
            while not pubs.poll():
                time.sleep(POLL)
        except subprocess.TimeoutExpired:
            raise RunFailed("mosquitto_sub did not receive the whole stream in 300 s") from None
        finally:
            pubs.kill()
            if sub.poll() is None:
                sub.kill()
                sub.wait()
    stamps = [float(line) for line in out.split()]
    if len(stamps) != total:
        raise RunFailed(f"mosquitto_sub received {len(stamps)} of {total} messages")
    return Run((total - 1) / (stamps[-1] - stamps[0]), pubs.rate(total))


@contextmanager
def fresh_store(run_dir: Path, server: str | None) -> Iterator[str]:
    """A SQLite file in the run's directory, or a throwaway database on the server."""
    if server is None:
        yield f"sqlite:///{run_dir / 'hub.db'}"
        return
    from tests.support.postgres import throwaway_database

    with throwaway_database("hafen_firehose", server) as url:
        yield url


def run_workers(
    run_dir: Path,
    lanes: list[tuple[str, Path]],
    hose: Firehose,
    tree: Path,
    workers: int,
    trees: Trees,
    server: str | None,
) -> Run:
    """The tree's ingest with ``workers`` worker processes, first to last event stored."""
    run_dir.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with fresh_store(run_dir, server) as url, LocalBroker(run_dir / "broker") as broker:
        seeded = _driver(trees, env, "seed", url, str(trees.registry))
        _check_tree(seeded, tree)
        procs = [
            _start_worker(trees, env, url, broker.port, str(i), run_dir) for i in range(workers)
        ]
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                run = _measure(conn, Publishers(broker.port, lanes), hose.total, procs, run_dir)
            for proc in procs:  # all told first: they stop side by side
                proc.stdin.close()  # type: ignore[union-attr]
            cpu = 0.0
            for proc in procs:
                said = proc.stdout.read()  # type: ignore[union-attr]
                if proc.wait(60) != 0:
                    raise RunFailed(f"a worker exited {proc.returncode}: {_log(run_dir)}")
                cpu += json.loads(said.splitlines()[-1])["cpu_seconds"]
            run.cpu = cpu / hose.total * 1e6
            with engine.connect() as conn:
                _verify(conn, hose)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            engine.dispose()
    return run


def _driver(trees: Trees, env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(trees.driver), *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RunFailed(f"driver {args[0]} failed:\n{done.stderr[-3000:]}")
    result: dict = json.loads(done.stdout.splitlines()[-1])
    return result


def _check_tree(said: dict, tree: Path) -> None:
    """The driver must have imported hub from the tree under test, not from anywhere else."""
    if not Path(said["hub"]).resolve().is_relative_to(tree.resolve()):
        raise RunFailed(f"hub came from {said['hub']}, not from {tree}")
    if said.get("dropped"):
        print(f"  (this tree's store has no {', '.join(said['dropped'])})", file=sys.stderr)


def _start_worker(
    trees: Trees, env: dict[str, str], url: str, port: int, name: str, run_dir: Path
) -> subprocess.Popen[str]:
    command = [sys.executable, str(trees.driver), "worker", url, str(port), name]
    with (run_dir / f"worker-{name}.log").open("w") as log:
        proc = subprocess.Popen(
            [*command, trees.card_key.hex()],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    ready = proc.stdout.readline()  # type: ignore[union-attr]
    if not ready:
        raise RunFailed(f"worker {name} did not start: {_log(run_dir)}")
    _check_tree(json.loads(ready), Path(env["PYTHONPATH"]))
    return proc


def _log(run_dir: Path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in sorted(run_dir.glob("worker-*.log")))


def _rows(conn: Connection, exact: bool) -> int:
    """Rows in the events, samples and dead-letter tables. Polled by the highest id: a lookup
    in the primary key, where counting rows 50 times a second would take a share of the CPU
    the workers are measured on. The ids are numbered in order here (nothing is deleted, and
    the stream has no duplicates), so the highest id is the count; ``exact`` counts."""
    what = "count(*)" if exact else "coalesce(max(id), 0)"
    tables = ("events", "occupancy_samples", "dead_letters")
    n: int = conn.execute(
        text("SELECT " + " + ".join(f"(SELECT {what} FROM {t})" for t in tables))
    ).scalar_one()
    conn.rollback()  # no read transaction held open between polls
    return n


def _measure(
    conn: Connection,
    pubs: Publishers,
    total: int,
    procs: list[subprocess.Popen[str]],
    run_dir: Path,
) -> Run:
    first: tuple[float, int] | None = None
    grew_at, last = time.monotonic(), 0
    try:
        while True:
            pubs.poll()
            now, count = time.monotonic(), _rows(conn, exact=False)
            if count and first is None:
                first = (now, count)
            if count != last:
                grew_at, last = now, count
            if count >= total and _rows(conn, exact=True) >= total:
                break
            if now - grew_at > STALL or any(p.poll() is not None for p in procs):
                raise RunFailed(
                    f"the store holds {count} of {total} events and stopped growing:\n"
                    + _log(run_dir)
                )
            time.sleep(POLL)
        while not pubs.poll():
            time.sleep(POLL)
    finally:
        pubs.kill()
    assert first is not None and pubs.done is not None
    rate = (total - first[1]) / (now - first[0]) if now > first[0] else float("nan")
    return Run(rate, pubs.rate(total), max(0.0, now - pubs.done))


def _verify(conn: Connection, hose: Firehose) -> None:
    """Every event stored exactly once, nothing refused, each device's seqs whole, marks at N,
    each allowed entry counted once in the roll-ups."""

    def one(sql: str) -> int:
        return int(conn.execute(text(sql)).scalar_one() or 0)

    problems = []
    stored = one("SELECT count(*) FROM events") + one("SELECT count(*) FROM occupancy_samples")
    if stored != hose.total:
        problems.append(f"{stored} events stored, {hose.total} published")
    dead = conn.execute(text("SELECT reason, count(*) FROM dead_letters GROUP BY reason")).all()
    if dead:
        problems.append(f"dead letters: {dict(tuple(row) for row in dead)}")
    places = conn.execute(
        text(
            "SELECT site, device, count(*), count(DISTINCT seq), min(seq), max(seq),"
            " count(DISTINCT epoch) FROM (SELECT site, device, epoch, seq FROM events UNION ALL"
            " SELECT site, device, epoch, seq FROM occupancy_samples) AS p GROUP BY site, device"
        )
    ).all()
    n = hose.per_device
    want = {(site, device): (n, n, 1, n, 1) for site, device in hose.devices}
    got = {(r[0], r[1]): tuple(r[2:]) for r in places}
    if got != want:
        problems.append(f"per device (rows, seqs, min, max, epochs) {got}, expected {want}")
    marks = dict(
        ((r[0], r[1]), r[2])
        for r in conn.execute(text("SELECT site, device, stored_seq FROM device_progress"))
    )
    if marks != {device: n for device in hose.devices}:
        problems.append(f"progress marks {marks}, expected {n} for each device")
    entries = one("SELECT sum(entries) FROM visits")
    if entries != hose.allowed:
        problems.append(f"visits count {entries} entries, the stream has {hose.allowed}")
    if problems:
        raise RunFailed("the store is not what was published:\n  " + "\n  ".join(problems))
