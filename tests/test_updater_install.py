"""The door's offline install of a release (edge.updater.installer) with real wheels of
hafen: exactly the manifest's files go in, with their hashes, and a release that does not
start or lacks a dependency is not complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.updater.installer import InstallFailed, install_release, requirements_text
from hafen.releases import Manifest, manifest_for
from tests.support.wheelhouse import fails_at_import, wheelhouse

NOW = __import__("datetime").datetime(2026, 12, 8, tzinfo=__import__("datetime").UTC)


def release(tmp_path: Path, version: str, patch=None) -> tuple[Path, Manifest]:
    wheels = wheelhouse(version, tmp_path / f"wheels-{version}", patch)
    return wheels, manifest_for(wheels, version, NOW)


def test_a_release_installs_offline_into_its_own_venv_and_runs(tmp_path):
    wheels, manifest = release(tmp_path, "0.1.1")
    target = tmp_path / "releases" / "0.1.1"
    target.mkdir(parents=True)
    install_release(manifest, wheels, target)
    said = subprocess.run(
        [str(target / "bin" / "hafen"), "version"], capture_output=True, text=True, check=True
    )
    assert "0.1.1" in said.stdout
    # No pip of its own: the running release's installs the next one into a venv of its own.
    assert not (target / "bin" / "pip").exists()
    lines = requirements_text(manifest).splitlines()
    assert len(lines) == len(manifest.files)
    assert any(line.startswith("hafen[edge]==0.1.1 --hash=sha256:") for line in lines)


def test_a_release_that_fails_at_import_is_not_complete(tmp_path):
    wheels, manifest = release(tmp_path, "0.1.2", fails_at_import)
    target = tmp_path / "releases" / "0.1.2"
    target.mkdir(parents=True)
    with pytest.raises(InstallFailed, match="start the new version: RuntimeError: broken release"):
        install_release(manifest, wheels, target)


def test_a_release_missing_a_dependency_installs_nothing(tmp_path):
    wheels, _ = release(tmp_path, "0.1.3")
    gone = next(w for w in wheels.iterdir() if w.name.startswith("paho_mqtt"))
    gone.unlink()
    manifest = manifest_for(wheels, "0.1.3", NOW)  # signed as it is: the hub takes it
    target = tmp_path / "releases" / "0.1.3"
    target.mkdir(parents=True)
    with pytest.raises(InstallFailed, match="install the wheels"):
        install_release(manifest, wheels, target)
    assert not list((target / "lib").glob("python3*/site-packages/hafen"))


def test_a_running_release_without_a_pip_gives_the_new_venv_its_own(tmp_path):
    wheels, manifest = release(tmp_path, "0.1.4")
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    target = tmp_path / "releases" / "0.1.4"
    target.mkdir(parents=True)
    install_release(manifest, wheels, target, python=str(bare / "bin" / "python"))
    # The next update has a pip: the venv's own, or the system's it sees.
    subprocess.run([str(target / "bin" / "python"), "-I", "-m", "pip", "--version"], check=True)
    said = subprocess.run(
        [str(target / "bin" / "hafen"), "version"], capture_output=True, text=True, check=True
    )
    assert "0.1.4" in said.stdout
