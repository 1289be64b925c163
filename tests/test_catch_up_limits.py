"""Catch-up snapshots are bounded (issue 13): a flood of states, for made-up doors or forged
for real ones, never makes the hub publish snapshot after snapshot. On a real mosquitto,
SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hafen import protocol
from hafen.protocol import DeviceState, encode_json
from hub import db
from hub.access_lists import AclPublisher
from hub.acl_catch_up import CatchUpLimits
from sim.broker import LocalBroker
from tests.support.clients import close_client
from tests.support.intruder import Snapshots
from tests.support.network import TestHub
from tests.support.waiting import wait_for

SITE = "leipzig-ost"


@pytest.fixture
def hub(tmp_path, hub_url):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker, url=hub_url).start()
        for site in (SITE, "borna"):
            hub.add_site(site)
        hub.add_member("anna", bytes.fromhex("04A1B2C3D4E5F6"))
        hub.publisher.publish_sites({SITE, "borna"})  # version 1 of each
        yield hub
        hub.stop()


def stored_states(hub: TestHub, site: str, devices: list[str], version: int = 0) -> None:
    """States the store holds for ``devices`` (today ingest stores any; soon proven ones only)."""
    state = {"online": True, "session": 1, "acl_version": version, "received_at": datetime.now(UTC)}
    with hub.engine.begin() as conn:
        conn.execute(
            db.device_states.insert(), [{"site": site, "device": d, **state} for d in devices]
        )


def publisher(hub: TestHub, **limits: Any) -> AclPublisher:
    return AclPublisher(
        hub.engine, hub.key, hub.client.publish, catch_up_limits=CatchUpLimits(**limits)
    )


def test_made_up_doors_get_no_snapshot_and_forged_states_only_the_sites_few(hub):
    snapshots = Snapshots(hub.broker.port)
    ghosts = [f"ghost-{i}" for i in range(100)]
    for ghost in ghosts:  # no state of their own in the store
        hub.publisher.catch_up(SITE, ghost, 0, delay=0)
    forged = [f"forged-{i}" for i in range(100)]
    stored_states(hub, SITE, forged)
    for door in forged:
        hub.publisher.catch_up(SITE, door, 0, delay=0)
    time.sleep(0.5)
    # The site's burst (doors restarting together), then nothing more for a while.
    assert snapshots.count() == CatchUpLimits().site_burst
    assert all(d.startswith(f"{SITE}.forged-") for d in snapshots.devices)
    # Another site keeps its own budget.
    stored_states(hub, "borna", ["door-1"])
    hub.publisher.catch_up("borna", "door-1", 0, delay=0)
    assert wait_for(lambda: snapshots.count() == CatchUpLimits().site_burst + 1, 5)
    snapshots.close()


def test_a_flood_of_states_for_one_door_sends_it_one_snapshot_per_interval(hub):
    stored_states(hub, SITE, ["door-1"])
    sender = publisher(hub, device_seconds=1.0)
    snapshots = Snapshots(hub.broker.port)
    started = time.monotonic()
    while time.monotonic() - started < 2.5:
        assert sender.catch_up(SITE, "door-1", 0, delay=0)
        time.sleep(0.01)
    time.sleep(0.3)
    # At once, then one look a second (each pending look stands for all the states since):
    # at most one per second of the 2.8 s, and the door is not forgotten either.
    assert 2 <= snapshots.count() <= 3
    assert len(sender.catch_ups._timers) <= 1
    sender.close()
    snapshots.close()


def test_the_network_bucket_bounds_every_site_together(hub):
    sites = [f"site-{i:02}" for i in range(30)]
    for site in sites:
        hub.add_site(site)
        stored_states(hub, site, ["door-1"])
    hub.publisher.publish_sites(set(sites))
    sender = publisher(hub, network_burst=10, network_per_second=0.1)
    snapshots = Snapshots(hub.broker.port)
    for site in sites:
        sender.catch_up(site, "door-1", 0, delay=0)
    time.sleep(0.5)
    assert snapshots.count() == 10
    assert sender.catch_ups.refused["network"] == 20
    snapshots.close()


def test_waiting_looks_are_bounded_however_many_doors_are_made_up(hub):
    sender = publisher(hub, max_pending=50, max_pending_per_site=20)
    for i in range(100):
        sender.catch_up(SITE, f"ghost-{i}", 0, delay=60)
        sender.catch_up("borna", f"ghost-{i}", 0, delay=60)
    assert len(sender.catch_ups._timers) == 40  # 20 per site
    for i in range(3):
        sender.catch_up(f"site-{i}", "door-1", 0, delay=60)  # no list: nothing to look at
    assert len(sender.catch_ups._timers) == 40
    assert sender.catch_ups.refused["pending"] == 160
    sender.close()


def test_states_flooding_in_through_the_broker_bring_only_the_sites_few_snapshots(hub):
    """What ingest hands the publisher, end to end: 100 made-up doors report version 0."""
    snapshots = Snapshots(hub.broker.port)
    intruder = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    intruder.connect("127.0.0.1", hub.broker.port)
    intruder.loop_start()
    state = encode_json(DeviceState(online=True, session=1, acl_version=0))
    for i in range(100):
        topic = protocol.state_topic(SITE, f"made-up-{i}")
        intruder.publish(topic, state, qos=1, retain=True).wait_for_publish(5)
    # Past the second look (3 s after each state) and then some.
    time.sleep(4.5)
    assert snapshots.count() <= CatchUpLimits().site_burst
    for i in range(100):  # leave no retained states behind in the broker
        intruder.publish(protocol.state_topic(SITE, f"made-up-{i}"), b"", retain=True)
    close_client(intruder)
    snapshots.close()
