"""Where releases live on a door, and the one atomic step that changes which one runs.

Layout under the updater's root (``/opt/hafen/edge`` on a Pi)::

    releases/1.4.2/          a complete release: its own venv, and the marker .complete
    releases/1.5.0/          one being installed: no marker yet; never listed nor run
    current -> releases/1.5.0    what systemd starts (ExecStart goes through it)
    previous -> releases/1.4.2   what a failed health gate switches back to

A release is installed at its final path, because a venv cannot be moved (pip writes its
path into every script it installs), and counts only once its marker is written, the last
step, atomically (hafen.files). What a cut-off install left (no marker) is removed and done
again. ``current`` is replaced by renaming a new symlink over it (``os.replace``: one
``rename(2)``, atomic on POSIX; ``ln -sfn`` unlinks first, and a power cut between the two
leaves no ``current`` at all). After a cut at any step the root holds either the old or the
new ``current``, never neither, and a second run of the same step does the same again.
``prune`` keeps the two newest releases and never the one ``current`` or ``previous`` names.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from packaging.version import InvalidVersion, Version

from hafen.files import sync_directory, write_atomically

RELEASES = "releases"
CURRENT = "current"
PREVIOUS = "previous"
#: Written into a release directory when its install is complete.
MARKER = ".complete"
#: Releases kept after a switch: the running one and the one to switch back to.
KEEP = 2


class ReleaseDirs:
    """The releases under ``root`` and the links that say which one runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / RELEASES

    def installed(self) -> list[str]:
        """The complete releases, oldest first by version (partial ones are not listed)."""
        if not self.releases.is_dir():
            return []
        versions = []
        for path in self.releases.iterdir():
            if path.is_symlink() or not (path / MARKER).is_file():
                continue
            try:
                versions.append((Version(path.name), path.name))
            except InvalidVersion:
                continue  # not ours: left alone
        return [name for _, name in sorted(versions)]

    def current(self) -> str | None:
        """The version ``current`` points at (None: none yet)."""
        return self._target(CURRENT)

    def previous(self) -> str | None:
        """The version to switch back to (None: none)."""
        return self._target(PREVIOUS)

    def path(self, version: str) -> Path:
        """Where ``version`` is (or would be) installed."""
        Version(version)  # raises InvalidVersion: never a path
        if "/" in version or version.startswith("."):
            raise InvalidVersion(f"{version!r} is not a plain version")
        return self.releases / version

    def is_complete(self, version: str) -> bool:
        return (self.path(version) / MARKER).is_file()

    def staging(self, version: str) -> Path:
        """An empty directory to install ``version`` into; what an earlier, cut-off try left
        there is removed first (the step runs again from its start). A complete release is
        never staged over: FileExistsError."""
        target = self.path(version)
        if self.is_complete(version):
            raise FileExistsError(f"release {version} is installed already")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        sync_directory(self.releases)
        return target

    def complete(self, version: str) -> Path:
        """Mark ``version``'s directory complete (its marker, written atomically and synced);
        returns its path. Completing a complete release changes nothing."""
        target = self.path(version)
        if not self.is_complete(version):
            write_atomically(target / MARKER, f"{version}\n".encode(), mode=0o644)
        return target

    def switch_to(self, version: str) -> None:
        """Make ``version`` current, the one current so far previous; each link replaced in
        one rename. Switching to what is current already changes nothing."""
        if not self.is_complete(version):
            raise FileNotFoundError(f"release {version} is not installed")
        running = self.current()
        if running == version:
            return
        if running is not None:
            self._link(PREVIOUS, running)
        self._link(CURRENT, version)

    def switch_back(self) -> str:
        """Make ``previous`` current again (a failed health gate); returns its version."""
        back = self.previous()
        if back is None or not self.is_complete(back):
            raise FileNotFoundError("there is no previous release to switch back to")
        failed = self.current()
        self._link(CURRENT, back)
        if failed is not None:
            self._link(PREVIOUS, failed)
        return back

    def prune(self) -> list[str]:
        """Delete incomplete releases and all but the ``KEEP`` newest complete ones, never
        those ``current`` or ``previous`` name; returns the versions deleted. Run it only
        while no install is under way (the updater does, before and after one)."""
        keep = set(self.installed()[-KEEP:]) | {self.current(), self.previous()}
        removed = []
        if self.releases.is_dir():
            for path in self.releases.iterdir():
                if not path.is_symlink() and path.is_dir() and not (path / MARKER).exists():
                    shutil.rmtree(path, ignore_errors=True)
        for version in self.installed():
            if version not in keep:
                shutil.rmtree(self.releases / version)
                removed.append(version)
        return removed

    def _target(self, link: str) -> str | None:
        path = self.root / link
        if not path.is_symlink():
            return None
        target = Path(os.readlink(path))
        return target.name if target.parent == Path(RELEASES) else None

    def _link(self, link: str, version: str) -> None:
        """Point ``link`` at ``version`` by renaming a fresh symlink over it."""
        fresh = self.root / f".{link}.new"
        if fresh.is_symlink() or fresh.exists():
            fresh.unlink()
        fresh.symlink_to(Path(RELEASES) / version)
        os.replace(fresh, self.root / link)
        sync_directory(self.root)
