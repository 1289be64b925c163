"""Writing a file so that a reader never sees half of it, and never one it should not.

Keys, certificates, revocation lists and configs are replaced while something may read them
(the broker its revocation list, the agent its certificate) and often by root in a directory
another user can write. So a file is written under a fresh name in the same directory
(``mkstemp``: created exclusively, never through a symlink), its mode and owner set on the
open file (not by name, which another process could swap for a symlink in between), synced,
renamed over the target (which replaces a symlink there rather than following it), and the
directory synced, so the new file survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(
    path: Path, data: bytes, mode: int = 0o600, uid: int = -1, gid: int = -1
) -> None:
    """Replace ``path`` with ``data`` (see the module); ``uid``/``gid`` -1 keep the writer's.
    Changing the owner needs the right to: root, or a group the writer is in."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            if uid != -1 or gid != -1:
                os.fchown(f.fileno(), uid, gid)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (its entry is written on the next fsync)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
