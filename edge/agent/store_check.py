"""Is the store file sound? Cheap checks of its header and write-ahead log, then SQLite's own.

A damaged store must never stop the door: start-up checks the file before opening it (a zeroed
header or a truncated file used to make the agent exit, a crash loop under systemd), and the
running agent tells corruption ("database disk image is malformed") apart from a store that
merely cannot be written (a full or read-only SD card), which needs no recovery.

``PRAGMA quick_check`` reads every page and checks the structure of every b-tree, but not that
indexes agree with their tables (``integrity_check`` does that too, for 2.5 times the cost).
Measured on a 100,000-card store (14 MB) on the development machine: quick_check 30 ms,
integrity_check 76 ms; a Pi is roughly ten times slower. A damaged page shows in the structure,
so quick_check is what start-up runs, and what the housekeeping thread runs every hour, cut off
after a few seconds so it never competes with taps for long.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from pathlib import Path

#: SQLite's primary result codes that mean the file itself is damaged.
_CORRUPT, _NOTADB = 11, 26
#: ... and those that mean it cannot be written just now (full, read-only, failing I/O).
_FULL, _READONLY, _IOERR, _CANTOPEN = 13, 8, 10, 14

_MAGIC = b"SQLite format 3\x00"
_WAL_MAGICS = {0x377F0682: "<", 0x377F0683: ">"}  # the checksum's byte order
_WAL_VERSION = 3007000


def is_corruption(exc: BaseException) -> bool:
    """Whether an sqlite3 error says the file is damaged (not full, locked or read-only)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_CORRUPT, _NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


def cannot_write(exc: BaseException) -> bool:
    """Whether an sqlite3 error says the store cannot be written now (full, read-only, I/O)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_FULL, _READONLY, _IOERR, _CANTOPEN)


def check_store(path: Path) -> str | None:
    """Why the store file at ``path`` is damaged, or None if it is sound (or not there yet).

    Raises only what is not damage (the file cannot be read for lack of permission, say):
    moving such a file aside would not help.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    wal = wal_damage(path)
    if wal is not None:
        return wal
    if size == 0:
        return None  # SQLite makes a new database of an empty file
    with path.open("rb") as f:
        header = f.read(100)
    if len(header) < 100:
        return f"truncated: {size} bytes"
    if not header.startswith(_MAGIC):
        return "not a database: its header is damaged"
    page_size = page_size_of(header)
    if page_size is None:
        return "not a database: its header gives no valid page size"
    if size % page_size:
        return f"truncated: {size} bytes is not a whole number of {page_size}-byte pages"
    pages, counter, valid_for = struct.unpack(">I", header[28:32]), header[24:28], header[92:96]
    if counter == valid_for and size < pages[0] * page_size and not _wal_has_frames(path):
        return f"truncated: {size // page_size} of {pages[0]} pages"
    return quick_check_file(path)


def quick_check_file(path: Path) -> str | None:
    """Run SQLite's quick_check on the file; the first problem it names, or None."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        if is_corruption(exc):
            return str(exc)
        raise
    try:
        return quick_check(conn)
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            return str(exc)
        raise
    finally:
        conn.close()


def quick_check(conn: sqlite3.Connection, within: float | None = None) -> str | None:
    """quick_check on an open connection: the first problem, None if sound.

    With ``within`` (seconds) the check is abandoned when it takes longer, and counts as sound:
    it is a periodic look, and the next one tries again.
    """
    if within is not None:
        deadline = time.monotonic() + within
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.OperationalError as exc:
        if within is not None and "interrupted" in str(exc):
            return None
        raise
    finally:
        if within is not None:
            conn.set_progress_handler(None, 0)
    first = str(rows[0][0]) if rows else "no answer"
    if first == "ok":
        return None
    lines = [line for line in first.splitlines() if not line.startswith("***")]
    return "quick_check: " + "; ".join(lines)[:120]


def page_size_of(header: bytes) -> int | None:
    """The page size a database header gives, or None if it is not one SQLite allows."""
    (raw,) = struct.unpack(">H", header[16:18])
    size = 65536 if raw == 1 else raw
    return size if 512 <= size <= 65536 and size & (size - 1) == 0 else None


def wal_page_size(path: Path) -> int | None:
    """The page size named by a sound write-ahead log next to ``path``, if there is one."""
    header = _wal_header(path)
    if header is None or wal_header_damage(header) is not None:
        return None
    size: int = struct.unpack(">I", header[8:12])[0]
    return size


def wal_damage(path: Path) -> str | None:
    """Why the write-ahead log next to ``path`` is garbage, or None (sound, empty, or none).

    SQLite ignores a log whose header does not check out, silently losing the transactions in
    it, and numbering events again from an older point: the store must get a new epoch.
    """
    header = _wal_header(path)
    if header is None:
        return None
    damage = wal_header_damage(header)
    return None if damage is None else f"the write-ahead log is garbage: {damage}"


def wal_header_damage(header: bytes) -> str | None:
    """What is wrong with a 32-byte write-ahead log header, None if nothing."""
    magic, version = struct.unpack(">II", header[:8])
    order = _WAL_MAGICS.get(magic)
    if order is None:
        return "bad magic number"
    if version != _WAL_VERSION:
        return f"unknown version {version}"
    if struct.unpack(">II", header[24:32]) != wal_checksum(header[:24], order):
        return "bad header checksum"
    return None


def wal_checksum(data: bytes, order: str, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    """SQLite's write-ahead log checksum over ``data`` (a multiple of 8 bytes)."""
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _wal_header(path: Path) -> bytes | None:
    """The first 32 bytes of the log, None if there is no log or it is shorter (never written:
    SQLite ignores it, and so do we)."""
    try:
        with wal_path(path).open("rb") as f:
            header = f.read(32)
    except FileNotFoundError:
        return None
    return header if len(header) == 32 else None


def _wal_has_frames(path: Path) -> bool:
    try:
        return wal_path(path).stat().st_size > 32
    except FileNotFoundError:
        return False


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def shm_path(path: Path) -> Path:
    return path.with_name(path.name + "-shm")
