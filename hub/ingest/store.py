"""Writing ingested batches: events once by ``event_id``, states newest session first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hafen.protocol import DeviceState
from hub import db
from hub.ingest.batch import Batch

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
#: How many events past the mark one progress check looks at.
PROGRESS_WINDOW = 50_000


_EVENT_COLUMNS = ("event_id", "site", "device", "seq", "kind", "at", "data", "received_at")


class IngestStore:
    """The ingest worker's writes, for SQLite and PostgreSQL alike."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.postgres else sqlite.insert
        mark = "%s" if self.postgres else "?"
        # The hot path goes straight to the driver's executemany: SQLAlchemy's per-row
        # parameter processing cost a third of the worker's time.
        self._events_sql = (
            f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES"
            f" ({', '.join([mark] * len(_EVENT_COLUMNS))}) ON CONFLICT (event_id) DO NOTHING"
        )

    def _event_row(self, event: dict) -> tuple:
        at, received = event["at"], event["received_at"]
        if not self.postgres:  # SQLAlchemy's SQLite DateTime format, naive UTC
            at = at.astimezone(UTC).strftime(_SQLITE_TIME)
            received = received.astimezone(UTC).strftime(_SQLITE_TIME)
        data = json.dumps(event["data"], separators=(",", ":"))
        return (
            event["event_id"],
            event["site"],
            event["device"],
            event["seq"],
            event["kind"],
            at,
            data,
            received,
        )

    def write(self, batch: Batch) -> None:
        """Write a whole batch in one transaction."""
        with self.engine.begin() as conn:
            if batch.events:
                rows = [self._event_row(e) for e in batch.events]
                conn.exec_driver_sql(self._events_sql, rows)
            if batch.dead:
                conn.execute(db.dead_letters.insert(), batch.dead)
            for (site, device), state in batch.states.items():
                self._upsert_state(conn, site, device, state)

    def _upsert_state(self, conn, site: str, device: str, state: DeviceState) -> None:
        """Keep the state of the newest session: a late will never overrides a newer birth."""
        values = {
            "online": state.online,
            "session": state.session,
            "software": state.software,
            "acl_version": state.acl_version,
            "uptime_seconds": state.uptime_seconds,
            "reported_at": state.at,
            "received_at": datetime.now(UTC),
        }
        stmt = self._insert(db.device_states).values(site=site, device=device, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["site", "device"],
            set_=values,
            where=db.device_states.c.session <= state.session,
        )
        conn.execute(stmt)

    def advance_progress(self, site: str, device: str) -> int | None:
        """Move the device's stored-without-gaps mark forward; returns it if it moved."""
        with self.engine.begin() as conn:
            stmt = self._insert(db.device_progress).values(site=site, device=device, stored_seq=0)
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["site", "device"]))
            mark = conn.scalar(
                select(db.device_progress.c.stored_seq).where(
                    db.device_progress.c.site == site, db.device_progress.c.device == device
                )
            )
            start = mark
            seqs = conn.scalars(
                select(db.events.c.seq)
                .where(db.events.c.site == site, db.events.c.device == device)
                .where(db.events.c.seq > mark)
                .order_by(db.events.c.seq)
                .limit(PROGRESS_WINDOW)
            )
            for seq in seqs:
                if seq != mark + 1:
                    break
                mark = seq
            if mark == start:
                return None
            conn.execute(
                update(db.device_progress)
                .where(db.device_progress.c.site == site, db.device_progress.c.device == device)
                .where(db.device_progress.c.stored_seq < mark)
                .values(stored_seq=mark)
            )
        return mark
