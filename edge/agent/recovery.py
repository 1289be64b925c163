"""Opening the door's store at start: a damaged file is moved aside and a fresh store begins.

``open_store`` finishes a recovery a crash interrupted, checks the file (edge.agent.store_check),
and if it is damaged (or the running agent marked it so before it restarted): reads what can be
read (edge.agent.salvage), builds a fresh store beside it with a new epoch, the salvaged events
and the carried-over values, then moves the damaged file aside with its write-ahead log and
shared memory (``edge.db.corrupt-<UTC time>``; the newest three are kept) and puts the fresh one
in its place. Each step leaves the directory in a state the next start completes:

1. ``edge.db.building`` is written and closed (no log of its own left), then renamed
   ``edge.db.fresh``: a fresh file exists only once it is whole;
2. the damaged file and its log move aside (the log first is never left next to a new file:
   SQLite would replay a stale log into it);
3. ``edge.db.fresh`` becomes ``edge.db``.

A start that finds ``edge.db.fresh`` moves whatever is still at ``edge.db`` aside and completes
step 3. Events the previous run kept in memory (``edge.db.kept``, written when it stopped) are
then added to the outbox. On a full disk the room kept for the store is given up first
(edge.agent.reserve), and made again once there is room.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.agent.reserve import keep_reserve, release_if_full
from edge.agent.salvage import Salvage, salvage
from edge.agent.store import EdgeStore
from edge.agent.store_check import check_store, is_corruption, shm_path, wal_path
from hafen.protocol import DeviceFault, EventKind

log = logging.getLogger(__name__)

#: Damaged files kept for inspection (each with its log); older ones are deleted.
KEEP_ASIDE = 3
#: Meta key of a recovered store until an access list is applied: what happened (JSON).
RECOVERED_KEY = "recovered"
#: Meta key: commands issued before this instant are refused (the list of recent ones was lost).
COMMANDS_NOT_BEFORE_KEY = "commands_not_before"
#: At most this many kept events are read back (the agent keeps no more in memory).
MAX_KEPT = 10_000
_KEPT_LINE = 16_384
_EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
_KINDS = {kind.value for kind in EventKind}
#: When the boot counter is lost, boots count on from the minutes since this instant: more than
#: any door restarts, so its session numbers keep growing for the hub.
_BOOT_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Recovery:
    """What a recovery found and did (stored as JSON in the fresh store's meta)."""

    reason: str
    aside: str
    at: str
    salvaged: int
    lost: int
    carried: list[str]

    def fault(self) -> str:
        """The store's fault text until an access list is applied (cut to fit the state)."""
        return (
            f"recovered ({self.reason[:50]}); damaged file kept as {self.aside};"
            f" {self.salvaged} events salvaged, {self.lost} lost; no access list yet"
        )

    @classmethod
    def from_meta(cls, text: str | None) -> Recovery | None:
        if not text:
            return None
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError):
            return None


def open_store(path: Path, synchronous: str = "full") -> tuple[EdgeStore, Recovery | None]:
    """Open the store at ``path``, recovering it first if it is damaged; never fails on damage.

    Returns the store (with ``auto_checkpoint`` off: the agent's housekeeping checkpoints) and
    what a recovery did, if one was needed.
    """
    release_if_full(path)
    finish_interrupted(path)
    reason = marked_damaged(path) or check_store(path)
    recovery = recover(path, reason, synchronous) if reason else None
    try:
        store = EdgeStore(path, synchronous, auto_checkpoint=False)
    except sqlite3.DatabaseError as exc:
        if recovery is not None or not is_corruption(exc):
            raise
        recovery = recover(path, str(exc), synchronous)
        store = EdgeStore(path, synchronous, auto_checkpoint=False)
    add_kept_events(store, path)
    keep_reserve(path)
    return store, recovery


def recover(path: Path, reason: str, synchronous: str = "full") -> Recovery:
    """Move the damaged store at ``path`` aside and put a fresh one with the salvage in place."""
    now = datetime.now(UTC)
    aside = _aside_name(path, now)
    log.error("the store %s is damaged (%s): moving it aside to %s", path, reason, aside.name)
    _prune_asides(path, keep=KEEP_ASIDE - 1)
    found = salvage(path)
    for note in found.notes:
        log.warning("salvage: %s", note)
    recovery = Recovery(
        reason=reason[:200],
        aside=aside.name,
        at=now.isoformat(timespec="seconds"),
        salvaged=len(found.events),
        lost=found.lost,
        carried=sorted(found.meta),
    )
    building, fresh = _sibling(path, ".building"), _sibling(path, ".fresh")
    _remove_database(building)
    _build(building, found, recovery, synchronous, now)
    os.replace(building, fresh)
    _sync_dir(path.parent)
    _move_aside(path, aside)
    os.replace(fresh, path)
    _sync_dir(path.parent)
    _sibling(path, ".damaged").unlink(missing_ok=True)
    log.error(
        "fresh store in place (new epoch): %d events salvaged, %d lost; carried over: %s",
        recovery.salvaged,
        recovery.lost,
        ", ".join(recovery.carried) or "nothing",
    )
    return recovery


def finish_interrupted(path: Path) -> None:
    """Complete a recovery that a crash or power cut interrupted (see the module's steps)."""
    _remove_database(_sibling(path, ".building"))
    fresh = _sibling(path, ".fresh")
    if not fresh.exists():
        return
    recovery = _recovery_of(fresh)
    aside = path.with_name(recovery.aside) if recovery else _aside_name(path, datetime.now(UTC))
    log.warning("finishing an interrupted recovery of %s", path)
    _move_aside(path, aside)
    os.replace(fresh, path)
    _sync_dir(path.parent)
    _sibling(path, ".damaged").unlink(missing_ok=True)


def mark_damaged(path: Path, reason: str) -> None:
    """Leave word for the next start that the running agent found the store damaged: it is
    recovered then even if SQLite's check happens to pass."""
    try:
        _sibling(path, ".damaged").write_text(reason[:500], encoding="utf-8")
    except OSError:
        log.exception("could not mark the store as damaged")


def marked_damaged(path: Path) -> str | None:
    try:
        with _sibling(path, ".damaged").open(encoding="utf-8", errors="replace") as f:
            return f"found damaged while running: {f.read(500).strip() or 'no reason given'}"
    except FileNotFoundError:
        return None


def keep_events(path: Path, events: Iterable[tuple[str, str, datetime, str]]) -> int:
    """Write events the agent could not put in its store (event_id, kind, time, JSON body) to
    ``edge.db.kept``, for the next start to add; returns how many were written."""
    lines = [
        json.dumps({"event_id": eid, "kind": kind, "at": at.isoformat(), "body": body}) + "\n"
        for eid, kind, at, body in events
    ]
    if not lines:
        return 0
    try:
        with _sibling(path, ".kept").open("a", encoding="utf-8") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        log.exception("could not keep %d events for the next start: they are lost", len(lines))
        return 0
    return len(lines)


def add_kept_events(store: EdgeStore, path: Path) -> int:
    """Add the events a previous run kept (``keep_events``) to the outbox, once each."""
    kept = _sibling(path, ".kept")
    try:
        with kept.open(encoding="utf-8", errors="replace") as f:
            rows = [row for line in _lines(f) if (row := _kept_row(line)) is not None]
    except FileNotFoundError:
        return 0
    try:
        with store.write() as conn:
            for event_id, kind, at, body in rows:
                store.append_raw(conn, kind, at, body, event_id)
    except sqlite3.Error:
        log.exception("could not add %d kept events; trying at the next start", len(rows))
        return 0
    kept.unlink()
    log.info("added %d events kept by the previous run", len(rows))
    return len(rows)


def _lines(f: Iterable[str]) -> Iterable[str]:
    for number, line in enumerate(f):
        if number >= MAX_KEPT:
            return
        yield line[:_KEPT_LINE]


def _kept_row(line: str) -> tuple[str, str, datetime, str] | None:
    try:
        item = json.loads(line)
        event_id, kind, body = str(item["event_id"]), str(item["kind"]), str(item["body"])
        at = datetime.fromisoformat(str(item["at"]))
        if not (_EVENT_ID.match(event_id) and kind in _KINDS and at.tzinfo is not None):
            return None
        if not isinstance(json.loads(body), dict):
            return None
    except (ValueError, TypeError, KeyError):
        return None  # a line cut short by a crash, or not ours
    return event_id, kind, at, body


def _build(
    building: Path, found: Salvage, recovery: Recovery, synchronous: str, now: datetime
) -> None:
    store = EdgeStore(building, synchronous)
    try:
        with store.write() as conn:
            for key, value in _carried(found.meta, now).items():
                store.set_meta(conn, key, value)
            conn.executemany(
                "INSERT OR IGNORE INTO salvaged (epoch, seq, event_id, kind, occurred_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [*found.events, *found.stand_ins()],
            )
            store.set_meta(conn, RECOVERED_KEY, json.dumps(asdict(recovery)))
            store.append_event(conn, DeviceFault(component="store", fault=recovery.fault()), now)
        # Back to a rollback journal: the file is whole on its own when it is renamed.
        store.conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        store.close()


def _carried(meta: dict[str, str], now: datetime) -> dict[str, str]:
    """The values carried into the fresh store, checked; what was lost is made safe instead."""
    carried: dict[str, str] = {}
    boot = meta.get("boot", "")
    if boot.isdigit():
        carried["boot"] = boot
    else:
        carried["boot"] = str(int((now - _BOOT_EPOCH).total_seconds() // 60))
    try:
        seen = json.loads(meta["commands_seen"])
        if not isinstance(seen, dict):
            raise ValueError("not a map")
        for when in seen.values():
            datetime.fromisoformat(str(when))
        carried["commands_seen"] = json.dumps(seen)
    except (KeyError, TypeError, ValueError):
        # Which commands were carried out lately is unknown: refuse every command issued before
        # now, or a captured unlock could be replayed while it is still young enough.
        carried[COMMANDS_NOT_BEFORE_KEY] = now.isoformat()
    return carried


def _recovery_of(fresh: Path) -> Recovery | None:
    try:
        conn = sqlite3.connect(f"file:{fresh}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (RECOVERED_KEY,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return Recovery.from_meta(row[0] if row else None)


def _move_aside(path: Path, aside: Path) -> None:
    """Move the database and its log and shared memory to ``aside`` (whichever are there)."""
    for part, target in (
        (wal_path(path), wal_path(aside)),
        (shm_path(path), shm_path(aside)),
        (path, aside),
    ):
        try:
            os.replace(part, target)
        except FileNotFoundError:
            continue
    _sync_dir(path.parent)


def _prune_asides(path: Path, keep: int) -> None:
    pattern = re.compile(re.escape(path.name) + r"\.corrupt-[0-9TZ.-]+$")
    asides = sorted(p for p in path.parent.iterdir() if pattern.match(p.name))
    for old in asides[: max(0, len(asides) - keep)]:
        _remove_database(old)
        log.info("deleted an old damaged store, %s", old.name)


def _aside_name(path: Path, now: datetime) -> Path:
    base = f"{path.name}.corrupt-{now.strftime('%Y%m%dT%H%M%S.%fZ')}"  # sorts by time
    aside, n = path.with_name(base), 1
    while aside.exists() or wal_path(aside).exists():
        n += 1
        aside = path.with_name(f"{base}-{n}")
    return aside


def _remove_database(path: Path) -> None:
    for part in (path, wal_path(path), shm_path(path), _sibling(path, "-journal")):
        part.unlink(missing_ok=True)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _sync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (a power cut must not undo them)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
