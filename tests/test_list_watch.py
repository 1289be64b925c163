"""The hub checks, not just listens (issue 13): it sends a site's newest list again, at a
bounded rate, until each door's own state shows it; on a real mosquitto, SQLite and
PostgreSQL, and with a real door whose retained list a third party replaced."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import update

from hafen import protocol
from hub import db
from hub.list_watch import ListWatch, WatchLimits
from hub.services.members import set_blocked
from tests.support.clients import close_client
from tests.support.intruder import retained
from tests.support.network import TestHub, acl_version, connected_edge
from tests.support.waiting import wait_for

SITE = "leipzig-ost"
ANNA = bytes.fromhex("04A1B2C3D4E5F6")


class Clock:
    """The watch's clock, moved by the test: minutes of backing off pass in a moment."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Spy:
    """A client on the broker that records what is published on ``topics`` from now on."""

    def __init__(self, port: int, *topics: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._record
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe([(t, 1) for t in topics])
        assert subscribed.wait(5)

    def _record(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        if not message.retain:  # what was retained before: not sent now
            with self._lock:
                self.messages.append((message.topic, bytes(message.payload)))

    def count(self, topic: str) -> int:
        with self._lock:
            return sum(1 for t, _ in self.messages if t == topic)

    def close(self) -> None:
        close_client(self.client)


@pytest.fixture
def hub(tmp_path, broker, hub_url):
    hub = TestHub(tmp_path, broker, url=hub_url).start()
    hub.add_site(SITE)
    hub.add_member("anna", ANNA)
    yield hub
    hub.stop()


def register(hub: TestHub, site: str, *devices: str) -> None:
    with hub.engine.begin() as conn:
        conn.execute(
            db.devices.insert(),
            [{"site": site, "id": d, "created_at": datetime.now(UTC)} for d in devices],
        )


def show_state(hub: TestHub, site: str, device: str, version: int, online: bool = True) -> None:
    """The door's own state, as ingest stores it once its proof checks out."""
    now = datetime.now(UTC)
    values = {"online": online, "session": 1, "acl_version": version, "received_at": now}
    with hub.engine.begin() as conn:
        changed = conn.execute(
            update(db.device_states)
            .where(db.device_states.c.site == site, db.device_states.c.device == device)
            .values(**values)
        ).rowcount
        if not changed:
            conn.execute(db.device_states.insert().values(site=site, device=device, **values))


def published_long_ago(hub: TestHub, site: str) -> None:
    with hub.engine.begin() as conn:
        conn.execute(
            update(db.acl_versions)
            .where(db.acl_versions.c.site == site)
            .values(published_at=datetime.now(UTC) - timedelta(minutes=5))
        )


def run(watch: ListWatch, clock: Clock, seconds: int, step: int = 5) -> dict[int, list]:
    """Tick the watch every ``step`` seconds of its clock; what it sent, by second."""
    sent, start = {}, clock.now
    for second in range(0, seconds, step):
        clock.now = start + second
        if got := watch.tick():
            sent[second] = [(r.kind, r.device, r.version) for r in got]
    clock.now = start + seconds
    return sent


def test_a_lagging_door_is_sent_the_list_backing_off_until_its_state_shows_it(hub, caplog):
    register(hub, SITE, "door-1")
    hub.publisher.publish_site(SITE)
    show_state(hub, SITE, "door-1", 1)
    set_blocked(hub.engine, hub.publisher, "anna", True)  # version 2: a delta from 1
    published_long_ago(hub, SITE)
    acl, snapshot = protocol.acl_topic(SITE), protocol.command_topic(SITE, "door-1", "acl_snapshot")
    spy = Spy(hub.broker.port, acl, snapshot)
    clock = Clock()
    watch = ListWatch(hub.engine, hub.publisher, clock=clock)
    caplog.set_level(logging.INFO, logger="hub.list_watch")

    sent = run(watch, clock, 600)

    # 15 s, then 30, 60, 120, 240 s later: the retained delta twice (the door holds its
    # base), then a snapshot of its own.
    assert sent == {
        15: [("retained", None, 2)],
        45: [("retained", None, 2)],
        105: [("snapshot", "door-1", 2)],
        225: [("snapshot", "door-1", 2)],
        465: [("snapshot", "door-1", 2)],
    }
    assert wait_for(lambda: spy.count(acl) == 2 and spy.count(snapshot) == 3, 5)

    show_state(hub, SITE, "door-1", 2)
    assert run(watch, clock, 900) == {}
    assert watch.unverified == frozenset()
    logged = [r.getMessage() for r in caplog.records]
    assert sum("door-1 is unverified" in m for m in logged) == 1
    assert sum("door-1 is verified again" in m for m in logged) == 1
    spy.close()


def test_a_new_version_starts_the_backing_off_afresh_and_offline_doors_wait(hub):
    register(hub, SITE, "door-1", "door-2")
    hub.publisher.publish_site(SITE)
    show_state(hub, SITE, "door-1", 1)
    show_state(hub, SITE, "door-2", 1, online=False)  # it gets the list when it is back
    set_blocked(hub.engine, hub.publisher, "anna", True)
    clock = Clock()
    watch = ListWatch(hub.engine, hub.publisher, clock=clock)
    assert run(watch, clock, 200) == {
        15: [("retained", None, 2)],
        45: [("retained", None, 2)],
        105: [("snapshot", "door-1", 2)],
    }
    set_blocked(hub.engine, hub.publisher, "anna", False)  # version 3
    show_state(hub, SITE, "door-1", 2)
    # door-1 holds the new delta's base: the retained list again, 15 s after it lagged.
    assert run(watch, clock, 50) == {15: [("retained", None, 3)], 45: [("retained", None, 3)]}


def test_the_whole_network_is_sent_at_most_its_budget(hub):
    doors = [f"door-{i:02}" for i in range(20)]
    register(hub, SITE, *doors)
    hub.publisher.publish_site(SITE)
    set_blocked(hub.engine, hub.publisher, "anna", True)  # a delta from 1
    for door in doors:
        show_state(hub, SITE, door, 0)  # a new store: the delta does not fit, a snapshot does
    clock = Clock()
    limits = WatchLimits(burst=10, per_second=5.0)
    watch = ListWatch(hub.engine, hub.publisher, limits, clock=clock)
    assert watch.tick() == []  # they lag from now
    clock.now += 15
    per_tick = []
    for _ in range(6):
        sent = watch.tick()
        per_tick.append(len(sent))
        clock.now += 1
    # All due at once: the burst, then five a second, until each door had its snapshot.
    assert per_tick == [10, 5, 5, 1, 0, 0]
    assert watch.sent == {"retained": 1, "snapshot": 20}


def test_a_door_whose_retained_list_was_put_back_gets_the_newest_within_the_bound(
    tmp_path, broker, hub_url, mock_pins
):
    """Issue 13's squatter: while the door is away an admin blocks a member; a client on the
    broker puts the old signed list back as the retained one and wipes the door's session
    (and the catch-up snapshot in it) by connecting with its client id. Back, the door sees
    only the old list; the hub's watch sends it the newest all the same."""
    hub = TestHub(tmp_path, broker, url=hub_url, catch_up=False).start()
    try:
        hub.add_site(SITE)
        register(hub, SITE, "door-1")
        hub.add_member("anna", ANNA)
        hub.publisher.publish_site(SITE)
        old_list = retained(broker.port, protocol.acl_topic(SITE))
        with connected_edge(tmp_path, hub) as (agent, _):
            assert wait_for(lambda: acl_version(agent) == 1, 10)
        set_blocked(hub.engine, hub.publisher, "anna", True)
        squat(broker.port, f"{SITE}.door-1", protocol.acl_topic(SITE), old_list)
        limits = WatchLimits(first_seconds=1.0, tick_seconds=0.2)
        watch = ListWatch(hub.engine, hub.publisher, limits).start()
        try:
            with connected_edge(tmp_path, hub) as (agent, card):
                # Back on the old list (the retained one is older still), and it says so.
                assert acl_version(agent) == 1
                assert wait_for(lambda: stored_version(hub, "door-1") is not None, 10)
                # Within the first try, a tick, and the door's apply and state.
                assert wait_for(lambda: acl_version(agent) == 2, limits.first_seconds + 8)
                card.present(ANNA)
                assert wait_for(lambda: decisions(hub) != [], 10)
                assert decisions(hub) == [{"allowed": False, "reason": "blocked"}]
                assert wait_for(lambda: stored_version(hub, "door-1") == 2, 10)
        finally:
            watch.stop()
        assert watch.sent["retained"] >= 1
    finally:
        hub.stop()


def squat(port: int, client_id: str, topic: str, old_list: bytes) -> None:
    """Take over a door's client id with a clean start (its session and anything queued in it
    are gone) and put an old signed list back as the retained one."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port, clean_start=True, properties=props)
    client.loop_start()
    try:
        client.publish(topic, old_list, qos=1, retain=True).wait_for_publish(5)
    finally:
        close_client(client)


def stored_version(hub: TestHub, device: str) -> int | None:
    with hub.engine.connect() as conn:
        return conn.scalar(
            db.device_states.select()
            .with_only_columns(db.device_states.c.acl_version)
            .where(db.device_states.c.device == device)
        )


def decisions(hub: TestHub) -> list[dict]:
    return [
        {k: e.data.get(k) for k in ("allowed", "reason")}
        for e in hub.events()
        if e.kind == "door.decision"
    ]
