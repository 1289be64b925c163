"""Dead letters cost a bounded amount (issue 13: garbage filled the hub's disk): a capped
prefix of each payload with its size and hash, and a bounded number a minute per worker. On a
real mosquitto, SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from hafen import protocol
from hub import db
from hub.ingest.dead_letters import (
    DEAD_LETTER_PREFIX,
    OVERALL_PER_MINUTE,
    PER_PREFIX_PER_MINUTE,
    DeadLetterLimiter,
    dead_letter_of,
)
from sim.broker import LocalBroker
from tests.support.intruder import MARKER, Intruder, event_body, handled
from tests.support.network import TestHub

SITE = "leipzig-ost"


@pytest.fixture
def hub(tmp_path, hub_url):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker, url=hub_url).start()
        hub.add_device(SITE, "door-1")
        hub.add_device(SITE, MARKER)
        yield hub
        hub.stop()


@pytest.fixture
def intruder(hub):
    intruder = Intruder(hub.broker.port)
    yield intruder
    intruder.close()


def letters(hub: TestHub) -> int:
    with hub.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(db.dead_letters)) or 0


def test_a_large_payload_leaves_only_its_prefix_size_and_hash(hub, intruder):
    big = b"{" + b"x" * (2 * 1024 * 1024)
    for device in ("door-1", "ghost"):
        intruder.publish(protocol.event_topic(SITE, device, "door.decision"), big)
    handled(hub, intruder)
    rows = hub.dead_letters()
    assert len(rows) == 2
    for row in rows:
        assert len(row.payload) == DEAD_LETTER_PREFIX and bytes(row.payload) == big[:4096]
        assert row.payload_bytes == len(big)
        assert row.payload_sha256 == hashlib.sha256(big).hexdigest()
        assert "not read" in row.reason and row.seq is None


def test_a_flood_of_garbage_leaves_at_most_the_bounded_number_of_rows(hub, intruder):
    garbage = [
        (protocol.event_topic(f"site-{i % 50}", f"door-{i}", "door.decision"), b"garbage %d" % i)
        for i in range(5000)
    ]
    intruder.publish_many(garbage)
    handled(hub, intruder)
    assert letters(hub) == OVERALL_PER_MINUTE
    limiter = hub.workers[0].dead_letters
    assert limiter.dropped_total == 5000 - OVERALL_PER_MINUTE
    # All at one device's topics: that prefix's share, and the rest are still filed.
    one_door = [(protocol.event_topic(SITE, "door-1", "door.exit"), b"junk")] * 1000
    limiter.flush()  # a new minute
    intruder.publish_many(one_door)
    intruder.publish(protocol.event_topic(SITE, "door-2", "door.exit"), b"junk")
    handled(hub, intruder)
    with hub.engine.connect() as conn:
        by_topic = dict(
            conn.execute(
                select(db.dead_letters.c.topic, func.count()).group_by(db.dead_letters.c.topic)
            ).all()
        )
    assert by_topic[protocol.event_topic(SITE, "door-1", "door.exit")] == PER_PREFIX_PER_MINUTE
    assert by_topic[protocol.event_topic(SITE, "door-2", "door.exit")] == 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def letter(topic: str, seq: int | None = None) -> dict:
    place = {"site": "s", "device": "d", "epoch": "0" * 16, "seq": seq} if seq else {}
    return dead_letter_of(topic, b"x", datetime.now(UTC), "test", place)


def test_the_limiter_counts_a_minute_and_sums_up_what_it_dropped(caplog):
    clock = Clock()
    limiter = DeadLetterLimiter(per_prefix=3, overall=5, clock=clock)
    first = [letter(f"hafen/v1/s/d{i % 2}/evt/x") for i in range(8)]
    kept = limiter.admit(first)
    assert len(kept) == 5  # d0 three, d1 two: the overall bound
    assert [k["topic"] for k in kept].count("hafen/v1/s/d0/evt/x") == 3
    # Letters with a place (a registered device near its mark) count only per prefix.
    placed = [letter("hafen/v1/s/d9/evt/x", seq=n) for n in range(1, 6)]
    assert len(limiter.admit(placed)) == 3
    clock.now = 59.0
    assert limiter.admit([letter("hafen/v1/s/d5/evt/x")]) == []
    with caplog.at_level(logging.WARNING, logger="hub.ingest.dead_letters"):
        clock.now = 60.0
        limiter.tick()
        limiter.tick()
    [summary] = caplog.records
    assert "dropped 6 dead letters from 4 topic prefixes" in summary.getMessage()
    assert len(limiter.admit([letter("hafen/v1/s/d5/evt/x")])) == 1  # a fresh minute
    assert (limiter.filed_total, limiter.dropped_total) == (9, 6)


def test_a_dead_letter_keeps_no_nul_and_no_endless_reason():
    row = dead_letter_of("hafen/v1/s/d/evt/x", b"\x00", datetime.now(UTC), "a\x00b" * 1000, {})
    assert "\x00" not in row["reason"] and len(row["reason"]) == 500
    assert row["payload"] == b"\x00"  # bytes are kept as they came


def test_an_event_of_a_registered_door_with_bad_data_keeps_its_place(hub, intruder):
    body = event_body({"allowed": "perhaps"}, seq=1)
    intruder.publish(
        protocol.event_topic(SITE, "door-1", "door.decision"), json.dumps(body).encode()
    )
    handled(hub, intruder)
    [row] = hub.dead_letters()
    assert (row.event_id, row.seq, row.epoch) == (body["event_id"], 1, body["epoch"])
    assert "invalid payload" in row.reason
