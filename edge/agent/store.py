"""The edge's local SQLite store: schema migrations, explicit transactions and the event outbox.

WAL mode lets readers (the door deciding) run while a writer commits; every event is committed
to the outbox before the door moves, so a crash never loses a decision the door acted on.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from hafen.protocol import kind_of

#: Each entry moves the schema one version up; PRAGMA user_version records how far a file is.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE acl_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE plans (id TEXT PRIMARY KEY, sites TEXT, windows TEXT);
    CREATE TABLE members (id TEXT PRIMARY KEY, blocked INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE grants (
        id INTEGER PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        plan_id TEXT REFERENCES plans(id),
        sites TEXT,
        valid_from_us INTEGER,
        valid_until_us INTEGER
    );
    CREATE INDEX grants_member ON grants(member_id);
    CREATE TABLE cards (
        hash TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        revoked INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        body TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX outbox_unsent ON outbox(seq) WHERE sent_at IS NULL;
    """,
]


@dataclass(frozen=True)
class OutboxEvent:
    """An event as stored: ``seq`` orders a device's events, ``event_id`` makes them idempotent."""

    seq: int
    event_id: str
    kind: str
    occurred_at: str
    body: dict


class EdgeStore:
    """One SQLite file holding the access list and the outbox; safe to share between threads."""

    def __init__(self, path: Path | str, synchronous: str = "full") -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def _migrate(self) -> None:
        with self.write():
            current = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in _statements(script):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={number}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction: all of it commits, or none of it."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Run a block of reads against one consistent snapshot."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.execute("COMMIT")

    def append_event(self, conn: sqlite3.Connection, payload: object, at: datetime) -> OutboxEvent:
        """Add an event to the outbox inside the caller's write transaction."""
        kind = kind_of(payload)  # type: ignore[arg-type]
        body = payload.model_dump(mode="json", exclude_none=True)  # type: ignore[attr-defined]
        event_id = uuid.uuid4().hex
        occurred_at = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        cursor = conn.execute(
            "INSERT INTO outbox (event_id, kind, occurred_at, body) VALUES (?, ?, ?, ?)",
            (event_id, kind.value, occurred_at, json.dumps(body, separators=(",", ":"))),
        )
        return OutboxEvent(cursor.lastrowid or 0, event_id, kind.value, occurred_at, body)

    def record_event(self, payload: object, at: datetime) -> OutboxEvent:
        """Commit one event to the outbox in its own transaction."""
        with self.write() as conn:
            return self.append_event(conn, payload, at)

    def pending_events(self, after_seq: int = 0, limit: int = 1000) -> list[OutboxEvent]:
        """Events not yet acknowledged by the hub, oldest first."""
        rows = self.conn.execute(
            "SELECT seq, event_id, kind, occurred_at, body FROM outbox"
            " WHERE sent_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [OutboxEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def integrity_ok(self) -> bool:
        """Run SQLite's own consistency check over the whole file."""
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements so they run inside our transaction."""
    return [part.strip() for part in script.split(";") if part.strip()]
