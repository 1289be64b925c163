"""The edge's local SQLite store: schema migrations, explicit transactions and the event outbox.

WAL mode lets readers (the door deciding) run while a writer commits; every event is committed
to the outbox before the door moves, so a crash never loses a decision the door acted on.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hafen.protocol import EventPayload, kind_of


def acl_tables(suffix: str = "", tag: str = "") -> str:
    """DDL of the access-list tables; a snapshot is built under ``suffix`` and swapped in.

    Changing these tables needs a migration as well as a change here.
    """
    return f"""
    CREATE TABLE plans{suffix} (id TEXT PRIMARY KEY, sites TEXT, windows TEXT);
    CREATE TABLE members{suffix} (id TEXT PRIMARY KEY, blocked INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE grants{suffix} (
        id INTEGER PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members{suffix}(id) ON DELETE CASCADE,
        plan_id TEXT REFERENCES plans{suffix}(id),
        sites TEXT,
        valid_from_us INTEGER,
        valid_until_us INTEGER
    );
    CREATE INDEX grants_member{tag} ON grants{suffix}(member_id);
    CREATE TABLE cards{suffix} (
        hash TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members{suffix}(id),
        revoked INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    """


#: Each entry moves the schema one version up; PRAGMA user_version records how far a file is.
MIGRATIONS: list[str] = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    + acl_tables()
    + """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    """,
    # Events read out of a damaged store by edge.agent.salvage, kept under the epoch and seq
    # they were given there (the hub knows them by that place and by event_id), until the
    # hub acknowledges that epoch up to them.
    """
    CREATE TABLE salvaged (
        id INTEGER PRIMARY KEY,
        epoch TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (epoch, seq)
    );
    """,
]


@dataclass(frozen=True)
class OutboxEvent:
    """An event as stored: ``seq`` orders a device's events, ``event_id`` makes them idempotent."""

    seq: int
    event_id: str
    kind: str
    occurred_at: str
    body: str  # the payload as JSON text, sent as it was stored

    def wire(self, epoch: str) -> bytes:
        """The event as published (hafen.protocol.EventMessage), built without re-parsing."""
        return (
            f'{{"schema":1,"event_id":"{self.event_id}","epoch":"{epoch}","seq":{self.seq},'
            f'"at":"{self.occurred_at}","data":{self.body}}}'
        ).encode()


@dataclass(frozen=True)
class SalvagedEvent:
    """An event salvaged from a damaged store, sent under that store's ``epoch``."""

    id: int
    epoch: str
    event: OutboxEvent


def new_event_id() -> str:
    """A random event id (32 hex digits): the hub keeps each event once by it."""
    return uuid.uuid4().hex


class EdgeStore:
    """One SQLite file holding the access list and the outbox; safe to share between threads."""

    def __init__(
        self,
        path: Path | str,
        synchronous: str = "full",
        auto_checkpoint: bool = True,
        cache_kib: int = 2000,
    ) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn = conn
        self._lock = threading.RLock()
        self._writers = _writer_lock(self.path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        if not auto_checkpoint:
            # The door's own connection never pays for a checkpoint inside a tap; the agent's
            # housekeeping connection does them (EdgeAgent).
            conn.execute("PRAGMA wal_autocheckpoint=0")
        self._migrate()

    def _migrate(self) -> None:
        # After an update is switched back (edge.updater), the older version opens a store
        # the newer one migrated, and goes on from MIGRATIONS[current:] (nothing): so a
        # migration only adds (a table, a column with a default), never changes what an
        # older version reads or writes.
        with self.write() as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in split_statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
            # A new store starts its event numbers at 1 again: its epoch tells the hub so.
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)",
                (os.urandom(8).hex(),),
            )
        self.epoch = str(self.get_meta("epoch"))

    def last_seq(self) -> int:
        """The highest ``seq`` this store ever gave an event (0 if none)."""
        with self._lock:
            row = self.conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
            ).fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction: all of it commits, or none of it.

        Inside another transaction of this store the block becomes a savepoint of it. A failed
        COMMIT (disk full) is rolled back, so the connection is never left in a transaction.
        """
        with self._lock:
            if self.conn.in_transaction:
                yield from self._savepoint()
                return
            # Writers of this process queue on a Python lock, which hands over at once, instead
            # of on SQLite's busy handler, which polls with sleeps of up to 100 ms.
            with self._writers:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                    self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("SAVEPOINT nested")
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO nested")
                self.conn.execute("RELEASE nested")
            raise
        self.conn.execute("RELEASE nested")

    @contextmanager
    def without_fsync(self) -> Iterator[None]:
        """Commit without waiting for the disk inside this block (synchronous=OFF).

        Only for rows that mean nothing until a later, normally durable transaction makes
        them count (a snapshot's shadow tables): a power cut loses at most those rows, never
        the database. Each commit then holds the writer lock for microseconds, not an fsync.
        """
        with self._lock:
            level = self.conn.execute("PRAGMA synchronous").fetchone()[0]
            self.conn.execute("PRAGMA synchronous=OFF")
        try:
            yield
        finally:
            with self._lock:
                self.conn.execute(f"PRAGMA synchronous={int(level)}")

    def table_names(self) -> list[str]:
        with self._lock:
            rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return [name for (name,) in rows]

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Run a block of reads against one consistent snapshot."""
        with self._lock:
            if self.conn.in_transaction:
                yield self.conn
                return
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the database without waiting for anyone."""
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def append_event(
        self,
        conn: sqlite3.Connection,
        payload: EventPayload,
        at: datetime,
        event_id: str | None = None,
    ) -> OutboxEvent:
        """Add an event to the outbox inside the caller's write transaction.

        ``event_id`` is given when the event was named before it could be written (kept in
        memory while the store could not be written): if it is in the outbox already, it is
        not added twice.
        """
        body = json.dumps(payload.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
        return self.append_raw(conn, kind_of(payload).value, at, body, event_id)

    def append_raw(
        self,
        conn: sqlite3.Connection,
        kind: str,
        at: datetime,
        body: str,
        event_id: str | None = None,
    ) -> OutboxEvent:
        """Add an event whose payload is already JSON text (see ``append_event``)."""
        occurred_at = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if event_id is not None:
            # Looked up rather than INSERT .. ON CONFLICT, which would use up a seq: the hub
            # needs them without gaps.
            row = conn.execute(
                "SELECT seq, occurred_at, body FROM outbox WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is not None:
                return OutboxEvent(row[0], event_id, kind, row[1], row[2])
        event_id = event_id or new_event_id()
        cursor = conn.execute(
            "INSERT INTO outbox (event_id, kind, occurred_at, body) VALUES (?, ?, ?, ?)",
            (event_id, kind, occurred_at, body),
        )
        return OutboxEvent(cursor.lastrowid or 0, event_id, kind, occurred_at, body)

    def record_event(self, payload: EventPayload, at: datetime) -> OutboxEvent:
        """Commit one event to the outbox in its own transaction."""
        with self.write() as conn:
            return self.append_event(conn, payload, at)

    def pending_events(self, after_seq: int = 0, limit: int = 1000) -> list[OutboxEvent]:
        """Events not yet acknowledged by the hub, oldest first."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT seq, event_id, kind, occurred_at, body FROM outbox"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxEvent(*row) for row in rows]

    def forget_events_upto(self, seq: int) -> None:
        """Forget the events the hub has stored, and remember how far it got."""
        with self.write() as conn:
            conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            self.set_meta(conn, "hub_stored_seq", seq)

    def salvaged_events(self, after_id: int = 0, limit: int = 500) -> list[SalvagedEvent]:
        """Events salvaged from a damaged store and not yet acknowledged, in ``id`` order."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, epoch, seq, event_id, kind, occurred_at, body FROM salvaged"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [SalvagedEvent(row[0], row[1], OutboxEvent(*row[2:])) for row in rows]

    def salvaged_epochs(self) -> set[str]:
        """The epochs of damaged stores whose events are still waiting here for the hub."""
        with self._lock:
            return {epoch for (epoch,) in self.conn.execute("SELECT DISTINCT epoch FROM salvaged")}

    def forget_salvaged_upto(self, epoch: str, seq: int) -> int:
        """Forget the salvaged events of ``epoch`` that the hub has stored; how many remain."""
        with self.write() as conn:
            conn.execute("DELETE FROM salvaged WHERE epoch = ? AND seq <= ?", (epoch, seq))
            left: int = conn.execute("SELECT count(*) FROM salvaged").fetchone()[0]
        return left

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, conn: sqlite3.Connection, key: str, value: object) -> None:
        """Set a meta value inside the caller's write transaction."""
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    def delete_meta(self, conn: sqlite3.Connection, key: str) -> None:
        """Remove a meta value inside the caller's write transaction."""
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    def integrity_ok(self) -> bool:
        """Run SQLite's own consistency check over the whole file."""
        result: str = self.conn.execute("PRAGMA integrity_check").fetchone()[0]
        return result == "ok"

    def close(self) -> None:
        with self._lock:
            self.conn.close()


_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    """One lock per database file, shared by every connection of this process to it."""
    key = str(path.resolve()) if str(path) != ":memory:" else f":memory:{id(path)}"
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.Lock())


def split_statements(script: str) -> list[str]:
    """Split a migration into statements so they run inside our transaction."""
    return [part.strip() for part in script.split(";") if part.strip()]
