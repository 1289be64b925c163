"""The releases the fleet-update tests roll out (tests/support/wheelhouse.py): real wheels of
this checkout at two versions with the dependency wheels beside them, accepted by the hub's
``manifest_for``, installed offline into a fresh venv with ``--require-hashes``, and run.

The dependency wheels are built once per venv (``make setup`` does it) and kept; the two
hafen wheels take about half a second each, an install without bytecode about a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from hafen.releases import Manifest, manifest_for
from tests.support.wheelhouse import (
    ROOT,
    cached_directory,
    default_cache_dir,
    dependency_wheels,
    fails_at_import,
    hafen_wheel,
    install_release,
    run_release,
    runtime_pins,
    wheelhouse,
)

OLD, NEW = "0.1.1", "0.1.2"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Manifest]]:
    """Wheelhouses of hafen OLD and NEW with their manifests, built once for the module."""
    base = tmp_path_factory.mktemp("releases")
    made = {}
    for version in (OLD, NEW):
        house = wheelhouse(version, base / version)
        made[version] = (house, manifest_for(house, version, datetime.now(UTC)))
    return made


def test_two_versions_are_two_wheelhouses_that_the_hub_accepts(releases):
    pins = runtime_pins()
    (old_dir, old), (new_dir, new) = releases[OLD], releases[NEW]
    assert (old.version, new.version) == (OLD, NEW)
    for manifest in (old, new):
        wheels: dict[str, str] = {}
        for release_file in manifest.files:
            name, version, _, _ = parse_wheel_filename(release_file.name)
            wheels[name] = str(version)
        assert wheels.pop("hafen") == manifest.version
        assert wheels == {canonicalize_name(name): str(Version(v)) for name, v in pins.items()}
    # The dependencies are the same files in both; only hafen's wheel differs.
    old_deps = {f for f in old.files if not f.name.startswith("hafen-")}
    new_deps = {f for f in new.files if not f.name.startswith("hafen-")}
    assert old_deps == new_deps
    assert sorted(p.name for p in new_dir.iterdir()) == sorted(f.name for f in new.files)
    assert {p.name for p in old_dir.iterdir()} - {p.name for p in new_dir.iterdir()} == {
        f"hafen-{OLD}-py3-none-any.whl"
    }


def test_the_hafen_wheel_carries_the_version_and_the_packages_data(releases):
    house, _ = releases[NEW]
    with zipfile.ZipFile(house / f"hafen-{NEW}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"hafen-{NEW}.dist-info/METADATA").decode()
    assert f"\nVersion: {NEW}\n" in metadata
    assert "Provides-Extra: edge" in metadata
    # An SPDX licence expression (core metadata 2.4), not the table pip and setuptools warn of.
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    for expected in ("hafen/releases.py", "edge/updater/release_dirs.py", "hub/db.py"):
        assert expected in names
    # The unit comes through provisioning/systemd, a link to the top-level systemd/.
    assert "provisioning/systemd/hafen-edge.service" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


@pytest.mark.slow
def test_a_release_installs_offline_with_hashes_and_runs_its_own_code(releases, tmp_path):
    for version in (OLD, NEW):
        house, manifest = releases[version]
        venv = tmp_path / version
        installed = install_release(house, manifest, venv)
        assert installed.returncode == 0, installed.stderr
        shown = run_release(venv, "version")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.strip() == version
        # The venv's own hafen, not this checkout's.
        where = subprocess.run(
            [str(venv / "bin/python"), "-c", "import hafen, nfc, gpiozero; print(hafen.__file__)"],
            cwd=venv,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            capture_output=True,
            text=True,
        )
        assert where.returncode == 0, where.stderr
        assert Path(where.stdout.strip()).is_relative_to(venv)


def test_a_wheel_changed_after_the_manifest_is_refused_by_pip(releases, tmp_path):
    original, manifest = releases[NEW]
    house = tmp_path / "house"
    house.mkdir()
    for path in original.iterdir():
        (house / path.name).write_bytes(path.read_bytes())
    with next(house.glob("nfcpy-*.whl")).open("ab") as wheel:
        wheel.write(b"\0")
    refused = install_release(house, manifest, tmp_path / "venv")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert not list((tmp_path / "venv").glob("lib/python*/site-packages/hafen"))


def test_a_wheelhouse_without_a_dependency_installs_nothing_from_elsewhere(releases, tmp_path):
    original, _ = releases[NEW]
    house = tmp_path / "house"
    house.mkdir()
    for path in original.iterdir():
        if not path.name.startswith("nfcpy-"):
            (house / path.name).write_bytes(path.read_bytes())
    manifest = manifest_for(house, NEW, datetime.now(UTC))
    refused = install_release(house, manifest, tmp_path / "venv")
    assert refused.returncode != 0
    assert "nfcpy" in refused.stderr
    assert not list((tmp_path / "venv").glob("lib/python*/site-packages/hafen"))


@pytest.mark.slow
def test_a_patched_release_is_built_as_asked_and_fails_to_start(tmp_path):
    house = wheelhouse("0.1.3", tmp_path / "broken", patch=fails_at_import)
    manifest = manifest_for(house, "0.1.3", datetime.now(UTC))
    installed = install_release(house, manifest, tmp_path / "venv")
    assert installed.returncode == 0, installed.stderr
    started = run_release(tmp_path / "venv", "version")
    assert started.returncode != 0
    assert "broken release" in started.stderr
    # The same version and patch again is the same wheel; without the patch, another.
    again = hafen_wheel("0.1.3", tmp_path / "again", patch=fails_at_import)
    assert again.read_bytes() == (house / again.name).read_bytes()
    plain = hafen_wheel("0.1.3", tmp_path / "plain")
    assert plain.read_bytes() != again.read_bytes()


def test_the_dependency_wheels_are_kept_and_found_again(tmp_path):
    first = dependency_wheels()
    assert first.parent == default_cache_dir()
    assert dependency_wheels() == first
    assert len(list(first.glob("*.whl"))) == len(runtime_pins())


# Two processes ask for one directory at once: one builds it (slowly), the other waits.
_RACER = """
import sys, time
from pathlib import Path
from tests.support.wheelhouse import cached_directory

log = Path(sys.argv[2])

def build(into):
    with log.open("a") as f:
        f.write("built\\n")
    time.sleep(0.5)
    (into / "half").write_text("1")
    time.sleep(0.2)
    (into / "whole").write_text("2")

print(cached_directory(Path(sys.argv[1]), build))
"""


def test_one_of_two_processes_builds_the_cache_and_the_other_uses_it(tmp_path):
    final, log = tmp_path / "cache" / "thing", tmp_path / "log"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(final), str(log)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [str(final)] * 2
    assert log.read_text() == "built\n"
    assert sorted(p.name for p in final.iterdir()) == ["half", "whole"]
    assert sorted(p.name for p in final.parent.iterdir()) == [".lock", "thing"]


def test_a_failed_or_abandoned_build_leaves_nothing_under_the_final_name(tmp_path):
    final = tmp_path / "thing"
    abandoned = tmp_path / ".building-killed"
    abandoned.mkdir()
    (abandoned / "half").write_text("1")

    def fails(into: Path) -> None:
        (into / "half").write_text("1")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cached_directory(final, fails)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]

    def works(into: Path) -> None:
        (into / "whole").write_text("2")

    built = cached_directory(final, works)
    assert built == final
    assert [p.name for p in final.iterdir()] == ["whole"]
