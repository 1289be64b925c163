"""One event per place (site, device, epoch, seq) in the hub's store (issue 13: forged events
had some of a door's seqs stored twice), on SQLite and PostgreSQL: written by ingest, made
impossible by the schema, and cleared from old data by the migration."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hub import db
from hub.ingest.batch import Batch
from hub.ingest.store import PLACE_USED, IngestStore

EPOCH = "00000000000000aa"


def event(seq: int, member: str = "anna", **fields) -> dict:
    now = datetime.now(UTC)
    return {
        "event_id": os.urandom(16).hex(),
        "site": "leipzig-ost",
        "device": "door-1",
        "epoch": EPOCH,
        "seq": seq,
        "kind": "door.decision",
        "at": now,
        "data": {"card": "ab" * 16, "allowed": True, "member": member},
        "received_at": now,
        **fields,
    }


def sample(seq: int, count: int = 3) -> dict:
    data = {"count": count, "confidence": 1.0, "present": True, "rooms": {}, "co2": {}}
    return event(seq, kind="occupancy.sample", data=data)


def rows(engine, table) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.id)))


def test_a_second_event_at_a_place_is_a_dead_letter_and_a_redelivery_nothing(engine):
    store = IngestStore(engine)
    first, rival, tap = event(1), event(1, member="mallory"), event(2)
    store.write(Batch(events=[first, tap]))
    batch = Batch(events=[first, rival])  # the first again, and another at its place
    store.write(batch)
    assert [e["event_id"] for e in batch.events] == [first["event_id"]]
    [letter] = rows(engine, db.dead_letters)
    assert (letter.event_id, letter.seq, letter.reason) == (rival["event_id"], 1, PLACE_USED)
    assert b'"member":"mallory"' in letter.payload and letter.payload_bytes == len(letter.payload)
    assert [r.event_id for r in rows(engine, db.events)] == [first["event_id"], tap["event_id"]]
    with engine.connect() as conn:  # mallory never reached the visits
        assert conn.scalar(select(func.sum(db.visits.c.entries))) == 2
        assert conn.scalar(select(db.visits.c.member).distinct()) == "anna"
    assert store.advance_progress("leipzig-ost", "door-1", EPOCH) == 2


def test_events_and_samples_never_share_a_place(engine):
    store = IngestStore(engine)
    tap, stolen = event(1), sample(1, count=99)
    reading, rival = sample(2), event(2)
    in_one_batch = [sample(3), event(3)]
    store.write(Batch(events=[tap, reading]))
    store.write(Batch(events=[stolen, rival]))
    store.write(Batch(events=in_one_batch))
    assert [r.seq for r in rows(engine, db.events)] == [1, 3]
    assert [r.seq for r in rows(engine, db.occupancy_samples)] == [2]
    letters = sorted((r.seq, r.reason) for r in rows(engine, db.dead_letters))
    assert letters == [(1, PLACE_USED), (2, PLACE_USED), (3, PLACE_USED)]
    with engine.connect() as conn:
        assert conn.scalar(select(db.occupancy_now.c.count)) == 3  # not the stolen place's 99


def test_the_schema_refuses_a_second_row_at_a_place(engine):
    now = datetime.now(UTC)
    row = {"site": "s", "device": "d", "epoch": EPOCH, "seq": 1, "kind": "door.exit"}
    row |= {"at": now, "data": {}, "received_at": now}
    with engine.begin() as conn:
        conn.execute(db.events.insert().values(event_id="a" * 32, **row))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(db.events.insert().values(event_id="b" * 32, **row))


def test_the_migration_moves_second_copies_to_the_dead_letters(hub_url):
    engine = db.connect(hub_url, upgrade=False)
    try:
        db.migrate(engine, "0010")
        now = datetime.now(UTC)
        events = sa.table(
            "events",
            *(sa.column(c) for c in ("event_id", "site", "device", "epoch", "seq", "kind")),
            sa.column("at", sa.DateTime(timezone=True)),
            sa.column("data", sa.JSON),
            sa.column("received_at", sa.DateTime(timezone=True)),
        )
        samples = sa.table(
            "occupancy_samples",
            *(sa.column(c) for c in ("event_id", "site", "device", "epoch", "seq", "count")),
            *(sa.column(c) for c in ("confidence", "present", "cause")),
            *(sa.column(c, sa.JSON) for c in ("rooms", "co2")),
            sa.column("at", sa.DateTime(timezone=True)),
            sa.column("received_at", sa.DateTime(timezone=True)),
        )
        place = {"site": "s", "device": "d", "epoch": EPOCH}

        def tap(event_id: str, seq: int, received: datetime) -> dict:
            data = {"card": "c", "allowed": True, "member": event_id}
            return {"event_id": event_id, **place, "seq": seq, "kind": "door.decision"} | {
                "at": now,
                "data": data,
                "received_at": received,
            }

        reading = {"event_id": "s" * 32, **place, "seq": 2, "count": 5, "confidence": 1.0}
        reading |= {"present": True, "rooms": {}, "co2": {}, "cause": "minute"}
        with engine.begin() as conn:
            conn.execute(
                events.insert(),
                [
                    tap("a" * 32, 1, now),
                    tap("b" * 32, 1, now),  # the same place again: a second copy
                    tap("c" * 32, 2, now),  # the sample at 2 came first
                    tap("d" * 32, 3, now),
                ],
            )
            conn.execute(
                samples.insert().values(**reading, at=now, received_at=now - timedelta(hours=1))
            )
            conn.exec_driver_sql(
                "INSERT INTO device_states (site, device, online, session,"
                " received_at, takeovers, refused_states) VALUES"
                " ('s', 'd', true, 1, CURRENT_TIMESTAMP, 0, 0)"
            )
        db.migrate(engine)
        assert [(r.event_id[0], r.seq) for r in rows(engine, db.events)] == [("a", 1), ("d", 3)]
        assert [r.event_id[0] for r in rows(engine, db.occupancy_samples)] == ["s"]
        letters = {r.event_id[0]: r for r in rows(engine, db.dead_letters)}
        assert sorted(letters) == ["b", "c"]
        assert all(r.reason.startswith(PLACE_USED) for r in letters.values())
        assert (letters["b"].seq, letters["c"].seq) == (1, 2)
        assert b'"member":"bbbbbbbb' in letters["b"].payload
        assert letters["b"].topic == "hafen/v1/s/d/evt/door.decision"
        # And back down, and up again.
        from alembic import command

        cfg = db.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0010")
        db.migrate(engine)
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(db.device_states)) == 1
    finally:
        engine.dispose()
