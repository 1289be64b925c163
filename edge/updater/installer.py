"""Installing a verified release into its own venv: offline, and exactly the manifest's wheels.

The door never asks the internet for anything: pip runs with ``--no-index`` on the directory
of wheels the updater downloaded and checked, and with ``--require-hashes``, so that pip
itself refuses any file whose SHA-256 is not the signed manifest's and any dependency the
manifest does not pin (a release built without one of its dependencies fails here, on the
door, not at the first import after the switch). The machine's pip configuration is ignored
(``PIP_CONFIG_FILE=/dev/null``): an index or a constraint set for the technician's shell
must not change what a door installs.

After the install the new venv is asked for its version: a release whose ``hafen`` does not
import, or says another version than its manifest, is not complete.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from hafen.releases import Manifest

#: The extra a door installs hafen with.
EXTRA = "edge"
#: What pip may take at most, also on a slow SD card (a cold install is about a minute on a Pi 4).
PIP_TIMEOUT = 900.0
#: Creating the venv and asking it for its version.
STEP_TIMEOUT = 120.0
#: The longest tail of a failed step's output kept as the reason.
MAX_REASON = 240
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")


class InstallFailed(Exception):
    """A release could not be installed; the message says which step and why."""


def requirements_text(manifest: Manifest) -> str:
    """pip's requirements for exactly the manifest's wheels: each distribution pinned to its
    version, with the hashes of all its files (a wheel per platform may be several)."""
    hashes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for release_file in manifest.files:
        match = _WHEEL.match(release_file.name)
        if match is None:  # the manifest's own validation makes this unreachable
            raise InstallFailed(f"{release_file.name} is not a wheel's name")
        name = match["name"].replace("_", "-").lower()
        hashes[(name, match["version"])].append(release_file.sha256)
    lines = []
    for (name, version), digests in sorted(hashes.items()):
        requirement = f"{name}[{EXTRA}]" if name == "hafen" else name
        pins = " ".join(f"--hash=sha256:{digest}" for digest in digests)
        lines.append(f"{requirement}=={version} {pins}")
    return "\n".join(lines) + "\n"


def install_release(
    manifest: Manifest,
    wheels: Path,
    target: Path,
    python: str = sys.executable,
) -> None:
    """Make ``target`` a venv holding the release (see the module); InstallFailed if not.
    ``target`` is the release's empty directory (edge.updater.release_dirs), ``wheels`` the
    checked downloads, ``python`` the interpreter the venv is made from (the running
    release's, whose pip installs into the new venv)."""
    requirements = target / "requirements.txt"
    # The system's site packages, as install.sh's venv: the Pi's pin library comes from apt.
    # No pip of its own: the running release's pip installs into it (``--python``), which
    # saves the seconds ensurepip takes on every update; a running release without a pip
    # (or too old a one) gives the new venv its own first.
    venv = [python, "-I", "-m", "venv", "--without-pip", "--system-site-packages", str(target)]
    _run("create the venv", venv, STEP_TIMEOUT, target)
    venv_python = str(target / "bin" / "python")
    pip = [python, "-I", "-m", "pip", "--python", venv_python]
    if not _pip_can_install_elsewhere(python, target):
        _run("give the venv a pip", [venv_python, "-I", "-m", "ensurepip"], PIP_TIMEOUT, target)
        pip = [venv_python, "-I", "-m", "pip"]
    requirements.write_text(requirements_text(manifest))
    _run(
        "install the wheels",
        [
            *pip,
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--require-hashes",
            # Every wheel into the venv, also where the system has a version of its own.
            "--ignore-installed",
            # Modules are compiled when the new version first imports them, while the old
            # one still decides at the door: the install itself is over sooner.
            "--no-compile",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "-r",
            str(requirements),
        ],
        PIP_TIMEOUT,
        target,
    )
    said = _run(
        "start the new version",
        [venv_python, "-I", "-c", "import edge.agent.runner, hafen; print(hafen.__version__)"],
        STEP_TIMEOUT,
        target,
    ).strip()
    if said != manifest.version:
        raise InstallFailed(f"the installed release says it is {said!r}, not {manifest.version}")


#: pip learnt ``--python`` (install into another environment) in 22.3.
PIP_WITH_PYTHON = (22, 3)


def _pip_can_install_elsewhere(python: str, cwd: Path) -> bool:
    """Whether ``python`` has a pip that can install into another venv."""
    try:
        said = _run("ask for pip", [python, "-I", "-m", "pip", "--version"], STEP_TIMEOUT, cwd)
    except InstallFailed:
        return False
    found = re.match(r"pip (\d+)\.(\d+)", said)
    return found is not None and (int(found[1]), int(found[2])) >= PIP_WITH_PYTHON


def _run(step: str, command: list[str], timeout: float, cwd: Path) -> str:
    """Run one step isolated (``-I``, in the release's directory): nothing of the
    caller's directory or environment stands in for what the release holds."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHONNOUSERSITE="1")
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InstallFailed(f"{step}: no end after {timeout:.0f} s") from None
    except OSError as exc:
        raise InstallFailed(f"{step}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip().splitlines()
        tail = output[-1] if output else f"exit status {done.returncode}"
        raise InstallFailed(f"{step}: {tail[-MAX_REASON:]}")
    return done.stdout
