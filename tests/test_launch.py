"""The launcher systemd starts (provisioning/launch.py): it runs the current release by its
real path, and switches back from a new version that crash-loops on probation."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.updater.job import JobFile, Phase, UpdateJob
from edge.updater.release_dirs import ReleaseDirs

LAUNCH = Path(__file__).parents[1] / "provisioning" / "launch.py"


def release(dirs: ReleaseDirs, version: str) -> None:
    """A release whose hafen says which it is and how it was called."""
    path = dirs.staging(version)
    program = path / "bin" / "hafen"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\necho "{version} $0 $*"\n')
    program.chmod(0o755)
    dirs.complete(version)


@pytest.fixture
def root(tmp_path: Path) -> ReleaseDirs:
    dirs = ReleaseDirs(tmp_path / "opt")
    release(dirs, "1.4.0")
    release(dirs, "1.5.0")
    dirs.switch_to("1.4.0")
    dirs.switch_to("1.5.0")
    (tmp_path / "state").mkdir()
    return dirs


def launch(dirs: ReleaseDirs, *args: str) -> str:
    env = {
        **os.environ,
        "HAFEN_ROOT": str(dirs.root),
        "STATE_DIRECTORY": str(jobs(dirs).path.parent),
    }
    done = subprocess.run(
        [sys.executable, str(LAUNCH), *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def jobs(dirs: ReleaseDirs) -> JobFile:
    return JobFile(dirs.root.parent / "state" / "update.json")


def job_of(dirs: ReleaseDirs) -> UpdateJob:
    job = jobs(dirs).load()
    assert job is not None
    return job


def on_probation(dirs: ReleaseDirs, phase: Phase = Phase.PROBATION, minutes: int = 10) -> None:
    now = datetime.now(UTC)
    jobs(dirs).save(
        UpdateJob(
            rollout=7,
            version="1.5.0",
            from_version="1.4.0",
            phase=phase,
            reported=True,
            ordered_at=now,
            probation_until=now + timedelta(minutes=minutes),
        )
    )


def test_the_current_release_runs_by_its_real_path_with_the_arguments(root):
    said = launch(root, "edge", "check-config", "/etc/hafen/edge.toml")
    program = root.releases / "1.5.0" / "bin" / "hafen"
    assert said == f"1.5.0 {program} edge check-config /etc/hafen/edge.toml"


@pytest.mark.parametrize("phase", [Phase.PROBATION, Phase.HEALTHY])
def test_a_new_version_started_a_fourth_time_on_probation_is_switched_back(root, phase):
    on_probation(root, phase)
    for start in (1, 2, 3):
        assert launch(root, "edge", "run").startswith("1.5.0"), start
        assert job_of(root).starts == start
    assert launch(root, "edge", "run").startswith("1.4.0")
    assert (root.current(), root.previous()) == ("1.4.0", "1.5.0")
    job = job_of(root)  # still a job the updater reads: the old version reports it
    assert (job.phase, job.reported) == (Phase.ROLLED_BACK, False)
    assert job.detail == "1.5.0 crash-looped: started 4 times in its probation; back on 1.4.0"
    assert launch(root, "edge", "run").startswith("1.4.0")  # and it stays


def test_starts_are_counted_only_for_the_agent_on_probation(root):
    on_probation(root)
    launch(root, "edge", "check-config", "x.toml")
    assert job_of(root).starts == 0
    on_probation(root, minutes=-1)  # the probation is over
    for _ in range(5):
        assert launch(root, "edge", "run").startswith("1.5.0")
    assert job_of(root).starts == 0


def test_a_damaged_job_file_or_no_previous_release_never_keeps_the_door_from_starting(root):
    jobs(root).path.write_bytes(b"\x00{not json")
    assert launch(root, "edge", "run").startswith("1.5.0")
    on_probation(root)
    (root.root / "previous").unlink()
    for _ in range(5):
        assert launch(root, "edge", "run").startswith("1.5.0")


def test_an_install_from_before_releases_runs_its_venv(tmp_path):
    opt = tmp_path / "opt"
    (opt / "venv" / "bin").mkdir(parents=True)
    (opt / "launch.py").write_bytes(LAUNCH.read_bytes())
    program = opt / "venv" / "bin" / "hafen"
    program.write_text('#!/bin/sh\necho "venv $*"\n')
    program.chmod(0o755)
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path)}
    env.pop("HAFEN_ROOT", None)
    done = subprocess.run(
        [sys.executable, str(opt / "launch.py"), "edge", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.strip() == "venv edge run", done.stderr


def test_a_crash_loop_after_a_cut_between_the_switch_and_the_probation_is_caught(root):
    """A job left switching with the new version current (a cut between the two steps, as
    an older updater ordered them) is on probation: a crash-loop is switched back."""
    now = datetime.now(UTC)
    jobs(root).save(  # the root fixture's current is 1.5.0, previous 1.4.0: as the cut left it
        UpdateJob(
            rollout=7,
            version="1.5.0",
            from_version="1.4.0",
            phase=Phase.SWITCHING,
            switches=1,
            ordered_at=now,
        )
    )
    for _ in range(6):
        launch(root, "edge", "run")
    assert root.current() == "1.4.0", job_of(root)


def test_a_current_release_without_its_marker_is_not_run(root):
    """A reinstall of the current release cut off by a power cut: the previous one runs, and
    is current again."""
    (root.releases / "1.5.0" / ".complete").unlink()
    (root.releases / "1.5.0" / "bin" / "hafen").unlink()
    assert launch(root, "edge", "run").startswith("1.4.0")
    assert (root.current(), root.previous()) == ("1.4.0", "1.5.0")


def test_starts_the_agent_forgives_are_no_crash_loop(root):
    """A start that ran healthily for two minutes (edge.updater.updater.STEADY_SECONDS), and
    one that ended because a self-test held the door (edge.agent.runner), are forgiven."""
    on_probation(root, Phase.HEALTHY)
    for _ in range(3):
        launch(root, "edge", "run")
    jobs(root).forgive_starts()  # the updater, once this start ran steadily
    for _ in range(3):
        launch(root, "edge", "run")
        jobs(root).forgive_starts(1)  # the runner, whose door a self-test held
    launch(root, "edge", "run")
    launch(root, "edge", "run")
    assert root.current() == "1.5.0" and job_of(root).starts == 2
