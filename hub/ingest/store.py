"""Writing ingested batches: each event once by ``event_id``, at most one at each place.

Device states are written by hub.ingest.states; what to believe is decided before this
(hub.ingest.screen).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hafen import protocol
from hafen.protocol import EventKind
from hub import db
from hub.arrivals import mark_arrivals
from hub.ingest.batch import Batch
from hub.ingest.dead_letters import dead_letter_of
from hub.rollout_steps import record_reports
from hub.rollups import Rollups

#: Files some of the dead letters it is given (hub.ingest.dead_letters.DeadLetterLimiter).
Admit = Callable[[list[dict]], list[dict]]
#: Why an event whose place another holds is a dead letter.
PLACE_USED = "place already used"

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
            # low and high: the 90 % interval, None (both) from doors that predate it.
            **{k: data.get(k) for k in ("count", "low", "high", "capacity", "confidence")},
            "present": data.get("present"),
            "rooms": data.get("rooms", {}),
            "co2": data.get("co2", {}),
            "cause": data.get("cause", "minute"),
            "received_at": event["received_at"].astimezone(UTC),
        }

    def write(self, batch: Batch, admit: Admit | None = None) -> None:
        """Write a whole batch in one transaction; occupancy samples go to their own table.

        An event stored already (by ``event_id``) is left as it is. An event with another id
        at a place (site, device, epoch, seq) that a stored event or sample holds already is
        moved to the batch's dead letters ("place already used"; ``admit`` bounds how many
        are filed): the store never holds two at one place. The roll-ups count only what this
        write newly stored (``RETURNING``), in the same transaction, so a redelivered event
        is never counted twice; an allowed entry also checks its member in for their booking
        there (hub.arrivals), and a door's update report moves its part in its rollout
        (hub.rollout_steps).
        """
        samples = [e for e in batch.events if e["kind"] == EventKind.OCCUPANCY]
        events = [e for e in batch.events if e["kind"] != EventKind.OCCUPANCY]
        with self.engine.begin() as conn:
            used: list[dict] = []
            if events:
                events, taken = _split(events, _taken(conn, db.occupancy_samples, events))
                stored = self._insert_events(conn, events)
                used += taken + self._place_used(conn, db.events, events, stored)
                new = [e for e in events if e["event_id"] in stored]
                self.rollups.add_entries(conn, new)
                mark_arrivals(conn, new)
                record_reports(conn, new)
            if samples:
                samples, taken = _split(samples, _taken(conn, db.events, samples))
                o = db.occupancy_samples
                stmt = self._insert(o).on_conflict_do_nothing()  # its id or its place
                rows = [self._sample_row(e) for e in samples]
                stored = set(conn.scalars(stmt.returning(o.c.event_id), rows)) if rows else set()
                used += taken + self._place_used(conn, o, samples, stored)
                self.rollups.add_samples(conn, [r for r in rows if r["event_id"] in stored])
            if used:
                gone = {e["event_id"] for e in used}
                batch.events = [e for e in batch.events if e["event_id"] not in gone]
                letters = [_letter(batch, e, PLACE_USED) for e in used]
                batch.dead += admit(letters) if admit else letters
            if batch.dead:
                stmt = self._insert(db.dead_letters).on_conflict_do_nothing(
                    index_elements=["event_id"]
                )
                conn.execute(stmt, batch.dead)

    def _place_used(
        self, conn: Connection, table: Table, rows: list[dict], stored: set[str]
    ) -> list[dict]:
        """Of ``rows`` not newly stored, those whose id the table does not hold: another
        event holds their place."""
        missing = [e for e in rows if e["event_id"] not in stored]
        if not missing:
            return []
        held: set[str] = set()
        ids = [e["event_id"] for e in missing]
        for i in range(0, len(ids), _ROWS_PER_STATEMENT):
            chunk = ids[i : i + _ROWS_PER_STATEMENT]
            held.update(conn.scalars(select(table.c.event_id).where(table.c.event_id.in_(chunk))))
        return [e for e in missing if e["event_id"] not in held]

    def _insert_events(self, conn: Connection, events: list[dict]) -> set[str]:
        """Insert events not stored yet, many rows per statement; the ids newly stored. A
        row whose id or place is taken is left out (``ON CONFLICT DO NOTHING``).

        Straight to the driver: SQLAlchemy's per-row parameter processing cost a third of the
        worker's time.
        """
        stored: set[str] = set()
        for i in range(0, len(events), _ROWS_PER_STATEMENT):
            chunk = events[i : i + _ROWS_PER_STATEMENT]
            sql = (
                f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES "
                + ", ".join([self._row_marks] * len(chunk))
                + " ON CONFLICT DO NOTHING RETURNING event_id"
            )
            params = tuple(value for e in chunk for value in self._event_row(e))
            stored.update(row[0] for row in conn.exec_driver_sql(sql, params))
        return stored

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


Place = tuple[str, str, str, int]


def _taken(conn: Connection, table: Table, rows: list[dict]) -> set[Place]:
    """The places of ``rows`` that ``table`` holds: one query over each device's range of
    seqs in the batch (a door's samples and events share its seqs)."""
    ranges: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        span = ranges.setdefault((r["site"], r["device"], r["epoch"]), [r["seq"], r["seq"]])
        span[0], span[1] = min(span[0], r["seq"]), max(span[1], r["seq"])
    t = table.c
    found: set[Place] = set()
    keys = sorted(ranges)
    for i in range(0, len(keys), 100):
        where = [
            and_(t.site == site, t.device == device, t.epoch == epoch, t.seq.between(lo, hi))
            for site, device, epoch in keys[i : i + 100]
            for lo, hi in [ranges[(site, device, epoch)]]
        ]
        query = select(t.site, t.device, t.epoch, t.seq).where(or_(*where))
        found.update((r.site, r.device, r.epoch, r.seq) for r in conn.execute(query))
    return found


def _split(rows: list[dict], taken: set[Place]) -> tuple[list[dict], list[dict]]:
    """``rows`` whose place is free, and those whose place is taken."""
    if not taken:
        return rows, []
    free: list[dict] = []
    used: list[dict] = []
    for r in rows:
        place = (r["site"], r["device"], r["epoch"], r["seq"])
        (used if place in taken else free).append(r)
    return free, used


def _letter(batch: Batch, event: dict, reason: str) -> dict[str, Any]:
    """The dead letter of an event: its own message, or (written without one, as tests and
    tools do) the event as a device would have sent it."""
    place = {k: event[k] for k in ("event_id", "site", "device", "epoch", "seq")}
    received = event["received_at"]
    message = batch.sources.get(event["event_id"])
    if message is not None:
        return dead_letter_of(message.topic, bytes(message.payload), received, reason, place)
    body = json.dumps(
        {
            "schema": protocol.SCHEMA_VERSION,
            "event_id": event["event_id"],
            "epoch": event["epoch"],
            "seq": event["seq"],
            "at": event["at"].isoformat(),
            "data": event["data"],
        },
        separators=(",", ":"),
    ).encode()
    topic = protocol.event_topic(event["site"], event["device"], event["kind"])
    return dead_letter_of(topic, body, received, reason, place)
