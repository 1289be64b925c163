"""Getting a release onto the door: its manifest checked, room on the disk, its files checked.

Nothing is installed from a release that is not signed by a release key, not the version
ordered, not newer than what runs (unless it is the signed rollback from exactly that), or
needs a newer door config than this one. Room is checked before the first byte is
downloaded (balena-supervisor#674: an updater that fills the disk takes the door's store
with it): the download, the venv made from it (about twice the wheels) and a reserve for
the store must all fit.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.updater.download import NotTheRelease
from hafen.releases import (
    Manifest,
    ReleaseFile,
    ReleaseRefused,
    open_manifest,
    require_upgrade,
    verify_files,
)

#: The door config schema this code reads; a release that needs a newer one is refused.
CONFIG_VERSION = 1
#: An installed venv takes about twice its wheels; with the download beside it, three times.
ROOM_FACTOR = 3
#: Left free for the door's store and logs whatever an update needs.
RESERVE_BYTES = 128 * 1024 * 1024


class Refused(Exception):
    """The release is not to be installed (signature, version, hash): nothing changes."""


class NoRoom(Exception):
    """The disk has not room for the release; the message says how much is missing."""


class Source(Protocol):
    """Where releases come from (edge.updater.download.ReleaseSource: the hub over HTTPS)."""

    def manifest(self, version: str) -> bytes: ...

    def fetch(self, version: str, release_file: ReleaseFile, directory: Path) -> Path: ...


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


@dataclass
class Fetcher:
    """Fetches and checks releases from ``source`` into ``downloads/<version>/``."""

    source: Source
    release_keys: list[Ed25519PublicKey]
    downloads: Path
    releases: Path
    free_bytes: Callable[[Path], int] = field(default=_free_bytes)

    def manifest(self, version: str, running: str) -> Manifest:
        """The checked manifest of ``version`` for a door running ``running``; Refused if
        it is not to be installed. Network failures raise the source's own error."""
        data = self.source.manifest(version)
        try:
            manifest = open_manifest(data, self.release_keys)
            if manifest.version != version:
                raise ReleaseRefused(f"the hub sent the manifest of {manifest.version}")
            require_upgrade(manifest, running)
        except ReleaseRefused as exc:
            raise Refused(str(exc)) from None
        if manifest.min_config_version > CONFIG_VERSION:
            raise Refused(
                f"{version} needs door config version {manifest.min_config_version}; this "
                f"door's is {CONFIG_VERSION}: update its config first"
            )
        return manifest

    def check_room(self, manifest: Manifest) -> None:
        """NoRoom unless the release fits beside what is there (see the module)."""
        size = sum(f.size for f in manifest.files)
        self.downloads.mkdir(parents=True, exist_ok=True)
        self.releases.mkdir(parents=True, exist_ok=True)
        have = self._downloaded_bytes(manifest)
        same_disk = self.downloads.stat().st_dev == self.releases.stat().st_dev
        wanted = {
            self.downloads: size - have + RESERVE_BYTES,
            self.releases: (ROOM_FACTOR - 1) * size + RESERVE_BYTES,
        }
        if same_disk:
            wanted = {self.releases: ROOM_FACTOR * size - have + RESERVE_BYTES}
        for path, need in wanted.items():
            free = self.free_bytes(path)
            if free < need:
                raise NoRoom(
                    f"disk full: {_mb(free)} MB free at {path}, {_mb(need)} MB needed "
                    f"(the release is {_mb(size)} MB)"
                )

    def download(self, manifest: Manifest) -> Path:
        """Every file of the release in ``downloads/<version>/``, checked; Refused if one is
        not what the manifest says (it is deleted). What is there and sound is kept."""
        directory = self.downloads / manifest.version
        directory.mkdir(parents=True, exist_ok=True)
        for release_file in manifest.files:
            try:
                self.source.fetch(manifest.version, release_file, directory)
            except NotTheRelease as exc:
                shutil.rmtree(directory, ignore_errors=True)
                raise Refused(str(exc)) from None
        for stray in directory.iterdir():  # a half-written file of a cut-off download
            if stray.name not in {f.name for f in manifest.files}:
                stray.unlink()
        try:
            verify_files(manifest, directory)
        except ReleaseRefused as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise Refused(str(exc)) from None
        return directory

    def forget(self, version: str) -> None:
        """Delete the downloads of ``version`` (once installed, refused, or failed)."""
        shutil.rmtree(self.downloads / version, ignore_errors=True)

    def forget_all_but(self, version: str) -> None:
        """Delete what earlier updates left in ``downloads/`` (a cut, a failure): only
        ``version``'s may be resumed."""
        if not self.downloads.is_dir():
            return
        for path in self.downloads.iterdir():
            if path.name != version and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)

    def _downloaded_bytes(self, manifest: Manifest) -> int:
        directory = self.downloads / manifest.version
        return sum(
            (directory / f.name).stat().st_size
            for f in manifest.files
            if (directory / f.name).is_file()
        )


def _mb(size: int) -> int:
    return max(0, size) // (1024 * 1024)
