"""Where releases live on a door, and the one atomic step that changes which one runs.

Layout under the updater's root (``/opt/hafen`` on a Pi)::

    releases/1.4.2/          a complete release (its own venv)
    releases/1.5.0/
    releases/.partial-1.5.0/ one being installed; never run, removed on the next start
    current -> releases/1.5.0    what systemd starts (ExecStart goes through it)
    previous -> releases/1.4.2   what a failed health gate switches back to

A release directory is filled under its ``.partial-`` name and renamed to its version only
when complete, and ``current`` is replaced by renaming a new symlink over it (``os.replace``:
one ``rename(2)``, atomic on POSIX; ``ln -sfn`` unlinks first, and a power cut between the
two leaves no ``current`` at all). After a cut at any step the root holds either the old or
the new ``current``, never neither, and a second run of the same step does the same again.
``prune`` keeps the two newest releases and never the one ``current`` or ``previous`` names.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from packaging.version import InvalidVersion, Version

from hafen.files import sync_directory

RELEASES = "releases"
CURRENT = "current"
PREVIOUS = "previous"
PARTIAL = ".partial-"
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
            if path.name.startswith(PARTIAL) or path.is_symlink() or not path.is_dir():
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

    def staging(self, version: str) -> Path:
        """An empty directory to install ``version`` into; what an earlier, cut-off try left
        there is removed first (the step runs again from its start)."""
        Version(version)  # raises InvalidVersion: never a path
        partial = self.releases / f"{PARTIAL}{version}"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        return partial

    def complete(self, version: str) -> Path:
        """Mark ``version``'s staging directory complete (a rename); returns its final path.
        A release of that version already complete is kept, and the staging one dropped."""
        partial, final = self.releases / f"{PARTIAL}{version}", self.releases / version
        if final.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
            return final
        os.replace(partial, final)
        sync_directory(self.releases)
        return final

    def switch_to(self, version: str) -> None:
        """Make ``version`` current, the one current so far previous; each link replaced in
        one rename. Switching to what is current already changes nothing."""
        if not (self.releases / version).is_dir():
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
        if back is None or not (self.releases / back).is_dir():
            raise FileNotFoundError("there is no previous release to switch back to")
        failed = self.current()
        self._link(CURRENT, back)
        if failed is not None:
            self._link(PREVIOUS, failed)
        return back

    def prune(self) -> list[str]:
        """Delete partial releases and all but the ``KEEP`` newest complete ones, never those
        ``current`` or ``previous`` name; returns the versions deleted."""
        keep = set(self.installed()[-KEEP:]) | {self.current(), self.previous()}
        removed = []
        if self.releases.is_dir():
            for path in self.releases.iterdir():
                if path.name.startswith(PARTIAL):
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
