#!/usr/bin/python3 -I
"""The door agent's launcher, ``/opt/hafen/launch``: what systemd starts (hafen-edge.service).

The releases are the agent's to change, under ``/opt/hafen/edge`` (edge.updater.release_dirs:
``releases/<version>/``, ``current``, ``previous``); the launcher is root's, beside them. It
runs the hafen of the release ``current`` names, by its real path (so that a process
never loads modules of a release switched to while it runs), with the arguments it was
given. A new version on probation after an update (edge.updater.job) that is started
more than ``MAX_STARTS`` times before its probation ends is crash-looping: the launcher
switches ``current`` back to ``previous``, notes why in the job file, and runs the old
version, which reports ``rolled_back`` to the hub.

It is apart from every release, and uses nothing but Python's standard library, on purpose:
a release that cannot even start must not be able to break the way back. install.sh copies
it into place; the switch back is written here again rather than imported from
edge.updater.release_dirs (which lives inside the releases) and is tested against it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: Starts of a version on probation before it counts as crash-looping.
MAX_STARTS = 3
#: As edge.updater.updater.PROBATION.
PROBATION = timedelta(minutes=10)
JOB_FILE = "update.json"
MAX_JOB_BYTES = 16 * 1024


def main(argv: list[str]) -> None:
    here = Path(__file__).resolve().parent
    root = Path(os.environ.get("HAFEN_ROOT") or here / "edge")
    state = Path(os.environ.get("STATE_DIRECTORY", "/var/lib/hafen").split(":")[0])
    if argv[:2] == ["edge", "run"]:
        try:
            count_start(root, state / JOB_FILE, datetime.now(UTC))
        except OSError as exc:  # never keep the door from starting
            print(f"hafen-launch: could not count the start: {exc}", file=sys.stderr)
    program = release_program(root, here)
    os.execv(program, [program, *argv])


def release_program(root: Path, here: Path) -> str:
    """The ``hafen`` of the current release, by its real path; of ``previous`` if the current
    one is not complete (a reinstall cut off by a power cut), switching back to it; an
    install from before releases (``/opt/hafen/venv``) if there is no ``current``."""
    for link in ("current", "previous"):
        version = _target(root, link)
        if version is not None and _complete(root, version):
            if link == "previous":
                print(f"hafen-launch: the current release is not complete; back on {version}",
                      file=sys.stderr)  # fmt: skip
                switch_back(root)
            return str((root / "releases" / version / "bin" / "hafen").resolve())
    return str(here / "venv" / "bin" / "hafen")


def _complete(root: Path, version: str) -> bool:
    release = root / "releases" / version
    return (release / ".complete").is_file() and (release / "bin" / "hafen").exists()


def count_start(root: Path, job_path: Path, now: datetime) -> None:
    """Count a start of a version on probation; switch back from one that crash-loops."""
    job = _read(job_path)
    if job is None:
        return
    if job.get("phase") == "switching" and _target(root, "current") == job.get("version"):
        # Cut between the switch and its probation (an older updater saved them the other
        # way round): on probation from now.
        job.update(phase="probation", probation_until=(now + PROBATION).isoformat())
    if job.get("phase") not in ("probation", "healthy"):
        return
    try:
        until = datetime.fromisoformat(str(job.get("probation_until")))
    except ValueError:
        return
    if until.tzinfo is None or now >= until or _target(root, "current") != job.get("version"):
        return
    starts = job.get("starts", 0)
    job["starts"] = starts = (starts if isinstance(starts, int) else 0) + 1
    if starts > MAX_STARTS and switch_back(root):
        job.update(
            phase="rolled_back",
            reported=False,
            detail=(
                f"{job.get('version')} crash-looped: started {starts} times in its"
                f" probation; back on {_target(root, 'current')}"
            ),
        )
        print(f"hafen-launch: {job['detail']}", file=sys.stderr)
    _write(job_path, job)


def switch_back(root: Path) -> bool:
    """Make ``previous`` current again, the failed one previous (as ReleaseDirs does)."""
    back, failed = _target(root, "previous"), _target(root, "current")
    if back is None or not _complete(root, back):
        return False
    _link(root, "current", back)
    if failed is not None:
        _link(root, "previous", failed)
    return True


def _target(root: Path, link: str) -> str | None:
    path = root / link
    if not path.is_symlink():
        return None
    target = Path(os.readlink(path))
    return target.name if target.parent == Path("releases") else None


def _link(root: Path, link: str, version: str) -> None:
    fresh = root / f".{link}.new"
    if fresh.is_symlink() or fresh.exists():
        fresh.unlink()
    fresh.symlink_to(Path("releases") / version)
    os.replace(fresh, root / link)
    _sync(root)


def _read(path: Path) -> dict[str, object] | None:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_JOB_BYTES + 1)
        job = json.loads(data) if len(data) <= MAX_JOB_BYTES else None
    except (OSError, ValueError):
        return None
    return job if isinstance(job, dict) and job.get("schema") == 1 else None


def _write(path: Path, job: dict[str, object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(job, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync(path.parent)


def _sync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main(sys.argv[1:])
