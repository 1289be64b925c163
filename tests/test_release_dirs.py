"""The updater's releases on a door's disk (edge.updater.release_dirs): a release is installed
beside the running one and made current by one rename, so a crash at any step leaves one
complete release current, and every step can run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from packaging.version import InvalidVersion

from edge.updater.release_dirs import ReleaseDirs


def install(dirs: ReleaseDirs, version: str) -> None:
    staging = dirs.staging(version)
    (staging / "marker").write_text(version)
    dirs.complete(version)


def runs(dirs: ReleaseDirs) -> str:
    """What a start through ``current`` would run."""
    return (dirs.root / "current" / "marker").read_text()


def test_a_release_is_installed_beside_the_running_one_and_switched_to_and_back(tmp_path):
    dirs = ReleaseDirs(tmp_path)
    assert (dirs.installed(), dirs.current(), dirs.previous()) == ([], None, None)
    install(dirs, "1.4.2")
    dirs.switch_to("1.4.2")
    assert (runs(dirs), dirs.previous()) == ("1.4.2", None)
    install(dirs, "1.5.0")
    assert runs(dirs) == "1.4.2"  # installed, not yet current
    dirs.switch_to("1.5.0")
    assert (runs(dirs), dirs.previous()) == ("1.5.0", "1.4.2")
    dirs.switch_to("1.5.0")  # again: nothing changes
    assert (dirs.current(), dirs.previous()) == ("1.5.0", "1.4.2")
    assert dirs.switch_back() == "1.4.2"  # the health gate failed
    assert (runs(dirs), dirs.previous()) == ("1.4.2", "1.5.0")
    assert os.readlink(tmp_path / "current") == "releases/1.4.2"  # relative: the root may move
    with pytest.raises(FileNotFoundError, match=r"2\.0\.0 is not installed"):
        dirs.switch_to("2.0.0")


def test_what_a_cut_off_step_left_is_redone_or_removed(tmp_path):
    dirs = ReleaseDirs(tmp_path)
    install(dirs, "1.4.2")
    dirs.switch_to("1.4.2")
    # Cut off while installing 1.5.0: a directory without its marker, never listed nor run.
    half = dirs.staging("1.5.0")
    (half / "half-written").write_text("x")
    assert dirs.installed() == ["1.4.2"]
    with pytest.raises(FileNotFoundError):
        dirs.switch_to("1.5.0")
    again = dirs.staging("1.5.0")  # the step from its start
    assert list(again.iterdir()) == []
    (again / "marker").write_text("1.5.0")
    # Cut off after the marker: completing again changes nothing; staging over it is refused.
    dirs.complete("1.5.0")
    assert dirs.complete("1.5.0") == tmp_path / "releases" / "1.5.0"
    with pytest.raises(FileExistsError):
        dirs.staging("1.5.0")
    assert (tmp_path / "releases" / "1.5.0" / "marker").read_text() == "1.5.0"
    # Cut off between making the new link and renaming it over current.
    (tmp_path / ".current.new").symlink_to("releases/1.5.0")
    assert runs(dirs) == "1.4.2"
    dirs.switch_to("1.5.0")
    assert runs(dirs) == "1.5.0" and not (tmp_path / ".current.new").is_symlink()


def test_only_the_two_newest_releases_stay_and_never_current_or_previous(tmp_path):
    dirs = ReleaseDirs(tmp_path)
    for version in ("1.2.0", "1.3.0", "1.4.2", "1.9.0", "1.10.0"):
        install(dirs, version)
    dirs.switch_to("1.2.0")
    dirs.switch_to("1.3.0")  # previous 1.2.0: both older than the two newest
    dirs.staging("1.11.0")
    # 1.10.0 is newer than 1.9.0 by version, though not by name.
    assert dirs.prune() == ["1.4.2"]
    assert dirs.installed() == ["1.2.0", "1.3.0", "1.9.0", "1.10.0"]
    assert not (tmp_path / "releases" / "1.11.0").exists()  # never completed


def test_a_version_is_never_a_path(tmp_path):
    dirs = ReleaseDirs(tmp_path)
    for bad in ("../../etc", "1.0/../../x", "", ".complete"):
        with pytest.raises(InvalidVersion):
            dirs.staging(bad)
    assert not (tmp_path / "etc").exists()


SWITCHER = """
import sys
from pathlib import Path
from edge.updater.release_dirs import ReleaseDirs
dirs = ReleaseDirs(Path(sys.argv[1]))
print("ready", flush=True)
while True:
    dirs.switch_to("1.5.0")
    dirs.switch_to("1.4.2")
"""


def test_a_process_killed_while_it_switches_leaves_a_complete_release_current(tmp_path):
    dirs = ReleaseDirs(tmp_path)
    install(dirs, "1.4.2")
    install(dirs, "1.5.0")
    dirs.switch_to("1.4.2")
    for kill in range(15):
        switcher = subprocess.Popen(
            [sys.executable, "-c", SWITCHER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert switcher.stdout is not None and switcher.stdout.readline() == "ready\n"
        time.sleep(0.005 * (kill % 5))
        switcher.send_signal(signal.SIGKILL)
        switcher.wait(10)
        switcher.stdout.close()
        assert runs(dirs) in ("1.4.2", "1.5.0"), kill
        assert dirs.previous() in ("1.4.2", "1.5.0", None), kill
