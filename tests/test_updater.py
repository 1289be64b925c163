"""The door's updater (edge.updater.updater) against the real hub serving releases: what it
refuses changes nothing and is reported; a full disk stops it before the first byte; each
phase a cut left is resumed; a failed hand-over or health gate puts the old version back.

The agent's side (recording a report, handing the door over, its health gate) is given as
plain functions here; tests/test_fleet_update.py runs the whole agent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.updater.download import ReleaseSource
from edge.updater.fetching import Fetcher
from edge.updater.job import JobFile, Phase, UpdateJob
from edge.updater.release_dirs import ReleaseDirs
from edge.updater.updater import Updater, UpdaterParts
from hafen.protocol import UpdateOrder, UpdateReport, UpdateStep, release_file_path
from hub import db
from tests.support.hub import migrated_sqlite
from tests.support.releases import RELEASE_KEY, Door, ReleaseHub, Served
from tests.support.waiting import wait_for

OLD, NEW = "1.4.0", "1.5.0"


@pytest.fixture
def hub(tmp_path) -> Iterator[ReleaseHub]:
    engine = db.connect(migrated_sqlite(tmp_path / "hub.db"))
    yield ReleaseHub(tmp_path / "hub", engine)
    engine.dispose()


def fake_release(dirs: ReleaseDirs, version: str) -> None:
    """A complete release as an install leaves it (the install itself is tested with real
    wheels in tests/test_fleet_update.py)."""
    dirs.staging(version)
    dirs.complete(version)


@dataclass
class Pi:
    """One door's disk and what the agent around the updater did."""

    root: Path
    door: Door
    url: str
    running: str = OLD
    reports: list[UpdateReport] = field(default_factory=list)
    handed: list[str] = field(default_factory=list)
    restarted: list[bool] = field(default_factory=list)
    keys: list = field(default_factory=lambda: [RELEASE_KEY.public_key()])
    free: int = 10 * 1024**3
    hand_over_says: str | None = None
    gate_says: str | None = None

    @property
    def dirs(self) -> ReleaseDirs:
        return ReleaseDirs(self.root / "opt")

    @property
    def jobs(self) -> JobFile:
        return JobFile(self.root / "state" / "update.json")

    def job(self) -> UpdateJob:
        job = self.jobs.load()
        assert job is not None
        return job

    def updater(self) -> Updater:
        source = ReleaseSource(self.url, None, self.door.key_file, self.door.cert_file, 10.0)
        fetcher = Fetcher(
            source,
            self.keys,
            downloads=self.root / "opt" / "downloads",
            releases=self.dirs.releases,
            free_bytes=lambda _path: self.free,
        )
        return Updater(
            UpdaterParts(
                dirs=self.dirs,
                fetcher=fetcher,
                jobs=self.jobs,
                running=self.running,
                report=self.reports.append,
                hand_over=self._hand_over,
                gate=lambda: self.gate_says,
                restart=lambda: self.restarted.append(True),
                python="/usr/bin/false",  # installs are not this test's
            )
        )

    def _hand_over(
        self, release: Path, version: str, gate_passed: Callable[[], None]
    ) -> str | None:
        self.handed.append(version)
        if self.hand_over_says is None:
            gate_passed()
        return self.hand_over_says

    def steps(self) -> list[tuple[str, str]]:
        return [(r.step.value, r.running) for r in self.reports]


@pytest.fixture
def served(hub: ReleaseHub) -> Iterator[Served]:
    with hub.served() as at:
        yield at


@pytest.fixture
def pi(tmp_path: Path, hub: ReleaseHub, served: Served) -> Pi:
    pi = Pi(tmp_path / "pi", hub.door("front-door"), served.url)
    (pi.root / "state").mkdir(parents=True)
    fake_release(pi.dirs, OLD)
    pi.dirs.switch_to(OLD)
    return pi


def run(pi: Pi, order: UpdateOrder | None = None, gate_passed: bool = False) -> None:
    """Start an updater (as the agent's start does), give it ``order``, wait until idle."""
    updater = pi.updater()
    updater.start(gate_passed=gate_passed)
    if order is not None:
        assert updater.order(order) == (True, "ordered")
    assert wait_for(lambda: _idle(pi), 20), pi.reports
    updater.stop()


def _idle(pi: Pi) -> bool:
    job = pi.jobs.load()
    time.sleep(0.05)
    return job is not None and (job.phase.done or job.phase == Phase.PROBATION)


ORDER = UpdateOrder(rollout=7, version=NEW)


def test_a_release_is_fetched_handed_over_to_and_said_healthy_by_the_new_version(hub, pi):
    hub.add_release(NEW)
    fake_release(pi.dirs, NEW)  # the install step, as a cut after it left it
    run(pi, ORDER)
    assert pi.steps() == [("downloading", OLD), ("installed", OLD), ("restarting", OLD)]
    assert pi.handed == [NEW] and (pi.dirs.current(), pi.dirs.previous()) == (NEW, OLD)
    assert pi.job().phase == Phase.PROBATION
    assert not (pi.root / "opt" / "downloads" / NEW).exists()  # installed: the download goes
    # The new version's start: it passed its gate while taking the door over.
    pi.running = NEW
    run(pi, gate_passed=True)
    assert pi.steps()[-1] == ("healthy", NEW)
    assert (pi.job().phase, pi.job().reported) == (Phase.HEALTHY, True)


def test_a_manifest_signed_by_another_key_is_refused_and_nothing_changes(hub, pi, served):
    hub.add_release(NEW)
    pi.keys = [Ed25519PrivateKey.generate().public_key()]
    run(pi, ORDER)
    assert pi.steps() == [("downloading", OLD), ("refused", OLD)]
    assert "not signed by a release key" in pi.reports[-1].detail
    assert pi.dirs.installed() == [OLD] and pi.dirs.current() == OLD and pi.handed == []
    assert served.requests.to(release_file_path(NEW, f"hafen-{NEW}-py3-none-any.whl")) == 0


def test_an_older_version_replayed_is_refused(hub, pi):
    hub.add_release(OLD)
    pi.running = NEW
    run(pi, UpdateOrder(rollout=8, version=OLD))
    assert pi.steps()[-1] == ("refused", NEW)
    assert f"version {OLD} is not newer than {NEW}" in pi.reports[-1].detail


def test_a_signed_rollback_from_the_running_version_is_fetched_and_handed_over(hub, pi, served):
    hub.add_release(OLD, ordered=False)
    hub.add_release(NEW, ordered=False)
    hub.add_rollback(OLD, NEW)
    hub.order(OLD, from_version=NEW)  # a rollback rollout made while the door ran NEW
    fake_release(pi.dirs, NEW)
    pi.dirs.switch_to(NEW)  # the door runs NEW; OLD is still installed beside it
    pi.running = NEW
    run(pi, UpdateOrder(rollout=8, version=OLD))
    assert pi.steps() == [("downloading", NEW), ("installed", NEW), ("restarting", NEW)]
    assert pi.handed == [OLD] and (pi.dirs.current(), pi.dirs.previous()) == (OLD, NEW)
    assert served.requests.to(release_file_path(OLD, f"hafen-{OLD}-py3-none-any.whl")) == 1


def test_a_tampered_wheel_is_refused_by_its_hash_and_leaves_nothing(hub, pi):
    manifest = hub.add_release(NEW)
    wheel = hub.kept(NEW, manifest.files[0].name)
    data = bytearray(wheel.read_bytes())
    data[100] ^= 0xFF
    wheel.write_bytes(bytes(data))
    run(pi, ORDER)
    assert pi.steps()[-1] == ("refused", OLD)
    assert "SHA-256 is not the manifest's" in pi.reports[-1].detail
    assert not (pi.root / "opt" / "downloads" / NEW).exists()
    assert pi.dirs.installed() == [OLD] and pi.handed == []


def test_a_full_disk_stops_the_update_before_the_first_byte(hub, pi, served):
    manifest = hub.add_release(NEW)
    pi.free = 100 * 1024 * 1024
    run(pi, ORDER)
    assert pi.steps()[-1] == ("failed", OLD)
    assert pi.reports[-1].detail.startswith("disk full: 100 MB free")
    for release_file in manifest.files:
        assert served.requests.to(release_file_path(NEW, release_file.name)) == 0


def test_a_failed_hand_over_leaves_the_old_version_current_and_says_why(hub, pi):
    hub.add_release(NEW)
    fake_release(pi.dirs, NEW)
    pi.hand_over_says = "the new version's health gate failed: the reader is not ready"
    run(pi, ORDER)
    assert pi.steps()[-1] == ("rolled_back", OLD)
    assert pi.reports[-1].detail == pi.hand_over_says
    assert pi.dirs.current() == OLD


def test_a_new_version_whose_gate_fails_after_a_restart_switches_back(hub, pi):
    fake_release(pi.dirs, NEW)
    pi.dirs.switch_to(NEW)
    now = datetime.now(UTC)
    pi.jobs.save(
        UpdateJob(
            rollout=7,
            version=NEW,
            from_version=OLD,
            phase=Phase.PROBATION,
            ordered_at=now,
            probation_until=now + timedelta(minutes=10),
        )
    )
    pi.running, pi.gate_says = (
        NEW,
        "not healthy after 60 s: no access list of this site verified yet",
    )
    updater = pi.updater()
    updater.start()
    assert wait_for(lambda: pi.restarted, 10)
    updater.stop()
    assert pi.dirs.current() == OLD and pi.reports == []  # the old version says it
    pi.running = OLD
    run(pi)
    assert pi.steps() == [("rolled_back", OLD)]
    assert pi.reports[-1].detail == pi.gate_says
    run(pi)  # told once: a later start says nothing
    assert len(pi.reports) == 1


@pytest.mark.parametrize(
    "phase", [Phase.DOWNLOADING, Phase.INSTALLING, Phase.INSTALLED, Phase.SWITCHING]
)
def test_a_job_cut_off_in_any_phase_is_resumed_by_the_next_start(hub, pi, phase):
    hub.add_release(NEW)
    fake_release(pi.dirs, NEW)
    pi.jobs.save(
        UpdateJob(
            rollout=7, version=NEW, from_version=OLD, phase=phase, ordered_at=datetime.now(UTC)
        )
    )
    run(pi)
    assert pi.handed == [NEW] and pi.job().phase == Phase.PROBATION
    assert pi.steps()[0] == (phase.step.value, OLD)  # the phase it was in, told again


def test_a_switch_cut_off_three_times_fails(hub, pi):
    fake_release(pi.dirs, NEW)
    pi.jobs.save(
        UpdateJob(
            rollout=7,
            version=NEW,
            from_version=OLD,
            phase=Phase.SWITCHING,
            switches=3,
            ordered_at=datetime.now(UTC),
        )
    )
    run(pi)
    assert pi.steps()[-1] == ("failed", OLD) and pi.handed == []
    assert "cut off 3 times" in pi.reports[-1].detail


def test_the_same_order_again_is_answered_from_where_it_stands(hub, pi):
    hub.add_release(NEW)
    fake_release(pi.dirs, NEW)
    run(pi, ORDER)
    updater = pi.updater()
    assert updater.order(ORDER) == (True, "probation")
    pi.jobs.save(pi.job().moved(Phase.DOWNLOADING))
    assert updater.order(UpdateOrder(rollout=9, version="1.6.0")) == (
        False,
        f"busy with the update to {NEW} (downloading)",
    )


def test_an_order_for_the_running_version_is_healthy_at_once(pi):
    run(pi, UpdateOrder(rollout=7, version=OLD))
    assert pi.steps() == [("healthy", OLD)]
    assert pi.reports[0].detail == f"already running {OLD}"
    assert pi.reports[0].step == UpdateStep.HEALTHY



#: A new version that says ``ready``, hears ``released`` and then dies (an import error at
#: its first tap, say): the old one must take the door back.
DIES_AFTER_RELEASE = (
    "import socket, sys\n"
    "sock = socket.socket(fileno=int(sys.argv[sys.argv.index('--take-over') + 1]))\n"
    "sock.sendall(b'ready\\n')\n"
    "sock.makefile().readline()\n"
    "sys.exit(4)\n"
)


def test_a_door_that_cannot_be_taken_back_leaves_no_update_busy_for_ever(hub, pi):
    """The real hand-over's ``take_door`` raises (a self-test claimed the door in the gap,
    the store would not open): the job still ends, and the next order is taken."""
    import sys

    from edge.agent.door_claim import DoorInUse
    from edge.agent.handover import HandOverTimes, OldSide, hand_over

    hub.add_release(NEW)
    fake_release(pi.dirs, NEW)

    def take_door() -> None:
        raise DoorInUse("the technician's self-test (hafen edge selftest)")

    def real_hand_over(release: Path, version: str, gate_passed: Callable[[], None]) -> str | None:
        old = OldSide(release_door=lambda: None, take_door=take_door, notify=lambda _m: None)
        command = [sys.executable, "-c", DIES_AFTER_RELEASE]
        return hand_over(command, old, gate_passed, HandOverTimes(ready=10, gate=10, stop=5))

    pi._hand_over = real_hand_over
    updater = pi.updater()
    updater.start()
    try:
        assert updater.order(ORDER) == (True, "ordered")
        wait_for(lambda: (job := pi.jobs.load()) is not None and job.phase.done, 15)
        # The job ended (rolled back or failed) and the hub may order again.
        assert pi.job().phase.done, pi.job()
        taken, said = updater.order(UpdateOrder(rollout=8, version="1.6.0"))
        assert taken, said
    finally:
        updater.stop()


def test_an_order_during_the_ten_minutes_after_an_update_is_worked_on(pi):
    """The probation's end (10 minutes) does not hold the next order back, and an order
    taken but not yet begun makes another one busy."""
    fake_release(pi.dirs, NEW)
    pi.dirs.switch_to(NEW)
    now = datetime.now(UTC)
    pi.jobs.save(
        UpdateJob(
            rollout=7,
            version=NEW,
            from_version=OLD,
            phase=Phase.HEALTHY,
            reported=True,
            ordered_at=now,
            probation_until=now + timedelta(minutes=10),
        )
    )
    pi.running = NEW
    updater = pi.updater()
    updater.start()
    try:
        assert updater.order(UpdateOrder(rollout=8, version="1.6.0")) == (True, "ordered")
        second = updater.order(UpdateOrder(rollout=9, version="1.7.0"))
        started = wait_for(lambda: pi.job().version != NEW, 5)
        assert started, f"the order sits in the queue: the job is still {pi.job().phase}"
        assert not second[0], second
    finally:
        updater.stop()
