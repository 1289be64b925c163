"""Reading what can still be read out of a damaged store: its undelivered events, and the few
values worth carrying into a fresh store.

The file is copied first (with its write-ahead log), so SQLite may do as it likes with the copy
and the damaged original stays as it was found, for inspection. A header that is not SQLite's
(zeroed, say) is rewritten in the copy, which often makes the rest readable again. Rows are read
by ranges of ``seq``; a range that errors is halved until the readable rows in it are found, so
one damaged page costs only the rows on it.

Every salvaged event keeps its whole identity: ``event_id``, and the ``epoch`` and ``seq`` the
damaged store gave it. The hub knows an event it already has by exactly that place, so a second
copy changes nothing there, and its progress mark for the old epoch moves on as usual. A place
that could not be read (the event is lost) gets a stand-in: a ``device.fault`` event saying so,
so the hub's mark for that epoch is not stuck at the hole and the salvaged events after it get
acknowledged too.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.agent.store import new_event_id
from edge.agent.store_check import page_size_of, wal_page_size, wal_path
from hafen.protocol import DeviceFault, EventKind

log = logging.getLogger(__name__)

#: Meta values carried into the fresh store: the boot counter keeps the door's session numbers
#: growing (the hub keeps the state of the newest session), and the commands carried out
#: recently keep a captured unlock from being replayed after the recovery.
CARRIED_META = ("boot", "commands_seen")
#: At most this many range reads per table: a store damaged all over is not read for ever.
MAX_READS = 20_000
#: Rows read per range.
CHUNK = 500
#: The widest hole filled with stand-ins; a wider one means the numbers read are not to be
#: trusted, and its events are dropped (counted as lost).
MAX_HOLE = 100_000

_EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
_EPOCH = re.compile(r"^[0-9a-f]{16}$")
_KINDS = {kind.value for kind in EventKind}
LOST = DeviceFault(component="store", fault="this event was lost in a damaged store")

#: A salvaged event: epoch, seq, event_id, kind, occurred_at, body.
Row = tuple[str, int, str, str, str, str]


@dataclass
class Salvage:
    """What was read out of a damaged store."""

    epoch: str | None = None
    events: list[Row] = field(default_factory=list)
    #: Places (epoch, seq, time of the next readable event) whose event could not be read:
    #: each gets a stand-in.
    holes: list[tuple[str, int, str]] = field(default_factory=list)
    #: Events read or known to exist that cannot be delivered (no epoch to send them under).
    dropped: int = 0
    #: Events after the last one read that the store numbered but could not be read.
    tail: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.holes) + self.dropped + self.tail

    def stand_ins(self) -> list[Row]:
        """A ``device.fault`` event at each hole, in the order of the places."""
        body = json.dumps(LOST.model_dump(mode="json"), separators=(",", ":"))
        return [
            (epoch, seq, new_event_id(), EventKind.DEVICE_FAULT.value, at, body)
            for epoch, seq, at in self.holes
        ]


def salvage(path: Path) -> Salvage:
    """Read what can be read of the damaged store at ``path`` (never raises on damage)."""
    found = Salvage()
    copy = path.with_name(path.name + ".salvage")
    try:
        _copy(path, copy)
    except OSError as exc:
        _remove(copy)
        # A full disk (often why a door is in trouble) has no room for the copy: the file is
        # read where it lies, never written (no header repair; a log not checkpointed yet is
        # not read, so a few events may be sent again, which the hub drops by their place).
        found.notes.append(f"could not copy the damaged store ({exc.strerror}): read in place")
        _read_file(f"file:{path}?mode=ro&immutable=1", found)
        return found
    try:
        _repair_header(copy, found)
        _read_file(f"file:{copy}", found)
    finally:
        _remove(copy)
    return found


def _read_file(uri: str, found: Salvage) -> None:
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            # Lets SQLite read a file shorter than its header says (truncated), and a schema
            # that does not quite check out; nothing is written through this connection.
            conn.execute("PRAGMA writable_schema=ON")
            _read(conn, found)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        found.notes.append(f"could not read the damaged store: {exc}")


def _read(conn: sqlite3.Connection, found: Salvage) -> None:
    meta, whole = _read_meta(conn)
    found.meta = {k: meta[k] for k in CARRIED_META if k in meta}
    epoch = meta.get("epoch")
    found.epoch = epoch = epoch if epoch is not None and _EPOCH.match(epoch) else None
    # The outbox holds every seq after the hub's mark (rows are deleted only up to it, in the
    # transaction that records it): from the mark + 1, or from 1 if the hub never had any.
    stored = _int(meta.get("hub_stored_seq"))
    if stored is None and whole:
        stored = 0
    last = _scalar(conn, "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
    lo = stored + 1 if stored is not None else _scalar(conn, "SELECT min(seq) FROM outbox")
    hi = max(
        (v for v in (last, _scalar(conn, "SELECT max(seq) FROM outbox")) if v is not None),
        default=None,
    )
    outbox = _read_range(conn, "outbox", "seq, event_id, kind, occurred_at, body", lo, hi, found)
    if epoch is None:
        # Sent under the fresh store's epoch they would take places the hub may already know
        # them at, and it would wait for those places for ever: they are counted as lost.
        found.dropped += len(outbox)
        if outbox:
            found.notes.append(f"{len(outbox)} events have no epoch to be sent under")
    else:
        found.events += [(epoch, *row) for row in outbox if _sound(row)]
    if hi is not None and lo is not None:
        found.tail = max(0, hi - max([lo - 1, *(row[0] for row in outbox)]))
    if _has_table(conn, "salvaged"):  # events of an earlier recovery, not yet delivered
        earlier = _read_range(
            conn,
            "salvaged",
            "epoch, seq, event_id, kind, occurred_at, body",
            _scalar(conn, "SELECT min(id) FROM salvaged"),
            _scalar(conn, "SELECT max(id) FROM salvaged"),
            found,
            key="id",
        )
        found.events += [row for row in earlier if _EPOCH.match(str(row[0])) and _sound(row[1:])]
    found.events.sort(key=lambda row: (row[0], row[1]))
    _find_holes(found, epoch, lo)


def _find_holes(found: Salvage, epoch: str | None, first: int | None) -> None:
    """Places between readable events of an epoch (and, in the damaged store's own epoch, from
    the first undelivered one) whose events could not be read."""
    places: dict[str, list[tuple[int, str]]] = {}
    for row in found.events:
        places.setdefault(row[0], []).append((row[1], row[4]))
    for each, numbers in places.items():
        expected = first if each == epoch and first is not None else numbers[0][0]
        for seq, at in numbers:  # a lost event happened before the next one read
            hole = seq - expected
            if 0 < hole <= MAX_HOLE:
                found.holes += [(each, n, at) for n in range(expected, seq)]
            elif hole > MAX_HOLE:
                found.notes.append(f"a hole of {hole} events in epoch {each}: not filled")
            expected = max(expected, seq + 1)


def _read_range(
    conn: sqlite3.Connection,
    table: str,
    columns: str,
    lo: int | None,
    hi: int | None,
    found: Salvage,
    key: str = "seq",
) -> list[tuple[Any, ...]]:
    """Every readable row of ``table`` with ``key`` in [lo, hi], halving ranges that error."""
    if lo is None or hi is None:
        scanned = _scan(conn, f"SELECT {key}, {columns} FROM {table} ORDER BY {key}")
        if lo is None:  # where it starts is unknown: what a plain scan reads is all there is
            if scanned is None:
                found.notes.append(f"{table}: not readable")
            return [row[1:] for row in scanned or []]
        # Where it ends is unknown: read on past the rows found, a bounded way.
        hi = max([lo, *(int(row[0]) for row in scanned or [])]) + 20 * CHUNK
    sql = f"SELECT {columns} FROM {table} WHERE {key} BETWEEN ? AND ? ORDER BY {key}"
    rows: list[tuple[Any, ...]] = []
    pending = [(start, min(start + CHUNK - 1, hi)) for start in range(lo, hi + 1, CHUNK)]
    pending.reverse()
    reads = unreadable = 0
    while pending:
        a, b = pending.pop()
        if reads >= MAX_READS:
            found.notes.append(f"{table}: gave up after {MAX_READS} reads")
            break
        reads += 1
        try:
            rows += conn.execute(sql, (a, b)).fetchall()
        except sqlite3.DatabaseError:
            if a == b:
                unreadable += 1
            else:
                mid = (a + b) // 2
                pending += [(mid + 1, b), (a, mid)]
    if unreadable:
        found.notes.append(f"{table}: {unreadable} rows unreadable")
    return rows


def _scan(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]] | None:
    """Rows of a full scan up to the first error (None if not even the start is readable)."""
    rows: list[tuple[Any, ...]] = []
    try:
        for row in conn.execute(sql):
            rows.append(row)
    except sqlite3.DatabaseError:
        return rows or None
    return rows


def _read_meta(conn: sqlite3.Connection) -> tuple[dict[str, str], bool]:
    """The meta values that can be read, and whether that is all of them."""
    try:
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}, True
    except sqlite3.DatabaseError:
        pass
    meta = {}
    for key in ("epoch", "hub_stored_seq", *CARRIED_META):
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None:
            meta[key] = str(row[0])
    return meta, False


def _sound(row: tuple[Any, ...]) -> bool:
    """Whether a row read from a damaged file looks like an event the store wrote."""
    seq, event_id, kind, occurred_at, body = row
    if not (isinstance(seq, int) and seq > 0 and isinstance(event_id, str)):
        return False
    if not (_EVENT_ID.match(event_id) and kind in _KINDS and isinstance(occurred_at, str)):
        return False
    try:
        return isinstance(json.loads(body), dict)
    except (TypeError, ValueError):
        return False


def _repair_header(copy: Path, found: Salvage) -> None:
    """Write a plausible SQLite header into a copy whose own is damaged."""
    with copy.open("rb") as f:
        header = f.read(100)
    if header.startswith(b"SQLite format 3\x00") and page_size_of(header) is not None:
        return
    size = copy.stat().st_size
    wal = wal_path(copy).exists()
    named = wal_page_size(copy)
    for page_size in [named] if named else [4096, 1024, 2048, 8192, 16384, 32768, 65536]:
        _write_header(copy, page_size, max(1, size // page_size), wal)
        if _schema_readable(copy):
            found.notes.append(f"rewrote the damaged header ({page_size}-byte pages)")
            return
    found.notes.append("the header could not be rebuilt")


def _write_header(copy: Path, page_size: int, pages: int, wal: bool) -> None:
    version = 2 if wal else 1
    header = bytearray(100)
    header[:16] = b"SQLite format 3\x00"
    header[16:18] = struct.pack(">H", 1 if page_size == 65536 else page_size)
    header[18:24] = bytes([version, version, 0, 64, 32, 32])
    struct.pack_into(">IIIIIII", header, 24, 1, pages, 0, 0, 1, 4, 0)
    struct.pack_into(">I", header, 56, 1)  # UTF-8
    major, minor, patch = sqlite3.sqlite_version_info
    struct.pack_into(">II", header, 92, 1, major * 1_000_000 + minor * 1000 + patch)
    with copy.open("r+b") as f:
        f.write(header)


def _schema_readable(copy: Path) -> bool:
    conn = sqlite3.connect(f"file:{copy}", uri=True)
    try:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()
    return "outbox" in names


def _copy(path: Path, copy: Path) -> None:
    _remove(copy)
    shutil.copyfile(path, copy)
    if wal_path(path).exists():
        shutil.copyfile(wal_path(path), wal_path(copy))


def _remove(copy: Path) -> None:
    for part in (copy, wal_path(copy), copy.with_name(copy.name + "-shm")):
        part.unlink(missing_ok=True)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the schema names the table (a store from before it was added has none); if the
    schema cannot be read, the reads that follow say so."""
    try:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return conn.execute(sql, (name,)).fetchone() is not None
    except sqlite3.DatabaseError:
        return True


def _scalar(conn: sqlite3.Connection, sql: str) -> int | None:
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.DatabaseError:
        return None
    return _int(row[0]) if row else None


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None
