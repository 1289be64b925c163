"""A door's self-test reaches the hub as every event does, the fleet shows each door's last
one, and it is never an entry. Ingest and the fleet on SQLite and PostgreSQL; the whole way
from the door's outbox through a real mosquitto on SQLite."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from edge.agent.store import EdgeStore
from edge.selftest import results as report
from edge.selftest.results import failed, passed, skipped
from edge.selftest.run import SelfTestOptions, run_selftest
from hafen import protocol
from hub import db
from hub.app import create_app
from hub.auth import Principal, Role
from hub.ingest.batch import classify
from hub.ingest.screen import Screen
from hub.ingest.store import IngestStore
from hub.services.events import recent_events
from hub.services.fleet import fleet_rows
from sim.broker import LocalBroker
from tests.support.hub import PASSWORD, add_staff, as_user
from tests.support.network import TestHub, connected_edge, edge_config
from tests.support.waiting import wait_for

SITE, DEVICE = "leipzig-ost", "door-1"
ADMIN = Principal(1, "admin", Role.NETWORK_ADMIN, frozenset())
TECHNICIAN = Principal(3, "tech", Role.TECHNICIAN, frozenset())
ELSEWHERE = Principal(2, "op", Role.SITE_OPERATOR, frozenset({"borna"}))
SILENT = "timeout: no reply from the mhz19b on /dev/serial0 <script>alert(1)</script>"


def selftest_message(store: EdgeStore, checks: list, at: datetime) -> mqtt.MQTTMessage:
    """A self-test as the door's outbox keeps it and its sender publishes it."""
    event = store.record_event(report.event(checks), at)
    message = mqtt.MQTTMessage(topic=protocol.event_topic(SITE, DEVICE, event.kind).encode())
    message.payload = event.wire(store.epoch)
    return message


def ingest(engine, message: mqtt.MQTTMessage) -> None:
    """What an ingest worker does with a batch: sort, screen, write."""
    now = datetime.now(UTC)
    batch = classify([message], now)
    Screen(engine).screen(batch, now)
    IngestStore(engine).write(batch)
    assert batch.dead == [] and len(batch.events) == 1


def fleet_page(engine, username: str) -> str:
    client = TestClient(create_app(engine))
    signed = client.post(
        "/ui/sign-in",
        data={"username": username, "password": PASSWORD, "next": "/ui/"},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    return client.get("/ui/fleet").text


def selftest_cell(page: str) -> str:
    row = re.search(rf'<tr [^>]*data-device="{SITE}/{DEVICE}".*?</tr>', page, re.S)
    assert row, "no fleet row for the door"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    return cells[4]  # site, door, state, checks, self-test


def test_the_fleet_shows_each_doors_last_selftest_and_no_entry_is_counted(engine, tmp_path):
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id=SITE, timezone="Europe/Berlin"))
        conn.execute(insert(db.devices).values(site=SITE, id=DEVICE, kind="door", created_at=now))
    add_staff(engine, operator_sites=[SITE])
    store = EdgeStore(tmp_path / "edge.db", "normal")
    long_ago = now - timedelta(days=400)  # beyond what the fleet looks back on
    ingest(engine, selftest_message(store, [failed("strike", "pin busy")], long_ago))
    assert fleet_rows(engine, ADMIN)[0].selftest is None
    assert 'data-selftest="none"' in selftest_cell(fleet_page(engine, "tim"))

    checks = [
        passed("strike", "released for 1 s, then locked"),
        failed("co2.air", SILENT),
        failed("broker", "cannot reach 127.0.0.1:8883 over TLS: refused"),
        skipped("card", "not asked for (--no-card)"),
    ]
    ingest(engine, selftest_message(store, checks, now - timedelta(hours=2)))
    [row] = fleet_rows(engine, ADMIN)
    assert row.selftest is not None and row.selftest.passed is False
    assert row.selftest.failed == {"co2.air": SILENT, "broker": checks[2].detail}
    with TestClient(create_app(engine)) as api:
        [listed] = api.get("/fleet", headers=as_user(api, "nadia")).json()
    assert (
        listed["selftest"]["passed"] is False and listed["selftest"]["failed"]["co2.air"] == SILENT
    )
    cell = selftest_cell(fleet_page(engine, "tim"))
    assert 'data-selftest="failed"' in cell and "failed: co2.air, broker" in cell
    assert "<script>" not in cell and "&lt;script&gt;" in cell
    with engine.connect() as conn:
        described, _long_ago = recent_events(conn, TECHNICIAN, SITE)
    assert described.what == "self-test failed: co2.air, broker" and described.outcome == "fault"

    ingest(engine, selftest_message(store, [passed("strike", "ok")], now))
    [row] = fleet_rows(engine, ADMIN)
    assert row.selftest is not None and row.selftest.passed is True and row.selftest.failed == {}
    assert 'data-selftest="passed"' in selftest_cell(fleet_page(engine, "olga"))
    with engine.connect() as conn:
        for table in (db.visits, db.site_days, db.member_months):
            assert conn.scalar(select(func.count()).select_from(table)) == 0, table.name
    assert fleet_rows(engine, ELSEWHERE) == []  # another site's operator: no such door
    store.close()


def test_a_selftest_goes_from_the_doors_outbox_to_the_fleet(tmp_path, mock_pins):
    """Run with the agent stopped; the agent, started again, delivers it exactly once."""
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker).start()
        try:
            cfg = edge_config(tmp_path, hub)
            done = run_selftest(cfg, SelfTestOptions(strike=False, card=False), lambda _: None)
            assert done.kept and not done.passed  # no list yet: the hub has sent none

            def tested() -> list:
                return [e for e in hub.events() if e.kind == "device.selftest"]

            with connected_edge(tmp_path, hub):
                assert wait_for(lambda: len(tested()) == 1, 10)
            [event] = tested()
            assert event.member is None and event.data["passed"] is False
            [row] = fleet_rows(hub.engine, ADMIN)
            assert row.selftest is not None and "access_list" in row.selftest.failed
            assert "broker" not in row.selftest.failed  # it reached the broker as the door
        finally:
            hub.stop()
