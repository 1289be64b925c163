"""Writing ingested batches: events once by ``event_id``, states newest session first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Select, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hafen.protocol import DeviceState, EventKind
from hub import db
from hub.ingest.batch import Batch
from hub.rollups import Rollups

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
#: Events per INSERT statement (10 parameters each; SQLite allows 32,766 per statement).
_ROWS_PER_STATEMENT = 500
#: How many events past the mark one progress check looks at.
PROGRESS_WINDOW = 50_000


_EVENT_COLUMNS = (
    "event_id",
    "site",
    "device",
    "epoch",
    "seq",
    "kind",
    "at",
    "data",
    "received_at",
    "member",
)


class IngestStore:
    """The ingest worker's writes, for SQLite and PostgreSQL alike."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.postgres else sqlite.insert
        mark = "%s" if self.postgres else "?"
        self._row_marks = f"({', '.join([mark] * len(_EVENT_COLUMNS))})"
        self.rollups = Rollups(self.postgres)

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
            event["epoch"],
            event["seq"],
            event["kind"],
            at,
            data,
            received,
            str(event["data"]["member"])[:64] if event["data"].get("member") else None,
        )

    def _sample_row(self, event: dict) -> dict:
        data = event["data"]
        return {
            **{k: event[k] for k in ("event_id", "site", "device", "epoch", "seq")},
            # UTC: SQLite keeps the wall-clock fields of whatever offset it is handed.
            "at": event["at"].astimezone(UTC),
            **{k: data.get(k) for k in ("count", "capacity", "confidence", "present")},
            "rooms": data.get("rooms", {}),
            "co2": data.get("co2", {}),
            "cause": data.get("cause", "minute"),
            "received_at": event["received_at"].astimezone(UTC),
        }

    def write(self, batch: Batch) -> None:
        """Write a whole batch in one transaction; occupancy samples go to their own table.

        The roll-ups count only what this write newly stored (``RETURNING``), in the same
        transaction, so a redelivered event is never counted twice.
        """
        samples = [e for e in batch.events if e["kind"] == EventKind.OCCUPANCY]
        events = [e for e in batch.events if e["kind"] != EventKind.OCCUPANCY]
        with self.engine.begin() as conn:
            if events:
                stored = self._insert_events(conn, events)
                self.rollups.add_entries(conn, (e for e in events if e["event_id"] in stored))
            if samples:
                o = db.occupancy_samples
                stmt = self._insert(o).on_conflict_do_nothing(index_elements=["event_id"])
                rows = [self._sample_row(e) for e in samples]
                stored = set(conn.scalars(stmt.returning(o.c.event_id), rows))
                self.rollups.add_samples(conn, [r for r in rows if r["event_id"] in stored])
            if batch.dead:
                stmt = self._insert(db.dead_letters).on_conflict_do_nothing(
                    index_elements=["event_id"]
                )
                conn.execute(stmt, batch.dead)
            for (site, device), state in batch.states.items():
                self._upsert_state(conn, site, device, state)

    def _insert_events(self, conn: Connection, events: list[dict]) -> set[str]:
        """Insert events not stored yet, many rows per statement; the ids newly stored.

        Straight to the driver: SQLAlchemy's per-row parameter processing cost a third of the
        worker's time.
        """
        stored: set[str] = set()
        for i in range(0, len(events), _ROWS_PER_STATEMENT):
            chunk = events[i : i + _ROWS_PER_STATEMENT]
            sql = (
                f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES "
                + ", ".join([self._row_marks] * len(chunk))
                + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            )
            params = tuple(value for e in chunk for value in self._event_row(e))
            stored.update(row[0] for row in conn.exec_driver_sql(sql, params))
        return stored

    def _upsert_state(self, conn: Connection, site: str, device: str, state: DeviceState) -> None:
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

    def advance_progress(self, site: str, device: str, epoch: str) -> int:
        """Move the device's stored-without-gaps mark forward as far as it goes; return it.

        Dead-lettered events count as stored: they are kept, and must not hold the mark back.
        """
        key = (
            db.device_progress.c.site == site,
            db.device_progress.c.device == device,
            db.device_progress.c.epoch == epoch,
        )
        with self.engine.begin() as conn:
            stmt = self._insert(db.device_progress).values(
                site=site, device=device, epoch=epoch, stored_seq=0
            )
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["site", "device", "epoch"]))
            mark: int = conn.execute(
                select(db.device_progress.c.stored_seq).where(*key)
            ).scalar_one()
            start = mark
            for seq in self._seqs_after(conn, site, device, epoch, mark):
                if seq > mark + 1:
                    break
                mark = max(mark, seq)
            if mark > start:
                conn.execute(
                    update(db.device_progress)
                    .where(*key, db.device_progress.c.stored_seq < mark)
                    .values(stored_seq=mark)
                )
            # Another worker may have got further meanwhile: report what the store holds.
            stored: int = conn.execute(
                select(db.device_progress.c.stored_seq).where(*key)
            ).scalar_one()
            return stored

    def _seqs_after(
        self, conn: Connection, site: str, device: str, epoch: str, mark: int
    ) -> list[int]:
        def seqs(table: Table) -> Select:
            return (
                select(table.c.seq)
                .where(table.c.site == site, table.c.device == device, table.c.epoch == epoch)
                .where(table.c.seq > mark)
                .order_by(table.c.seq)
                .limit(PROGRESS_WINDOW)
            )

        found: set[int] = set()
        for table in (db.events, db.occupancy_samples, db.dead_letters):
            found.update(conn.scalars(seqs(table)))
        return sorted(found)
