"""Forged, foreign, stale and broken messages through a real mosquitto: refused, reported,
nothing changed, nothing crashed."""

from __future__ import annotations

import os

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from hafen import protocol
from sim.broker import LocalBroker
from tests.support.network import TestHub, acl_version, connected_edge
from tests.support.refusals import ANNA, assert_still_opens, sealed_list
from tests.support.waiting import wait_for

SITE, DEVICE = "leipzig-ost", "door-1"


@pytest.fixture
def network(tmp_path, mock_pins):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker).start()
        hub.add_site(SITE)
        hub.add_member("anna", ANNA)
        hub.publisher.publish_site(SITE)
        try:
            with connected_edge(tmp_path, hub) as (agent, card):
                assert wait_for(lambda: acl_version(agent) == 1, 10)
                yield hub, agent, card, Intruder(broker.port)
        finally:
            hub.stop()


class Intruder:
    """Anyone who can publish on the broker (the broker's ACLs come with provisioning)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


def refusals(hub: TestHub) -> list[dict]:
    return [e.data for e in hub.events() if e.kind == "acl.refused"]


def test_forged_list_is_refused_and_reported(network):
    hub, agent, card, intruder = network
    forged = sealed_list(Ed25519PrivateKey.generate(), SITE, 99)
    intruder.publish(protocol.acl_topic(SITE), forged, retain=True)
    assert wait_for(lambda: len(refusals(hub)) == 1, 10)
    assert "signature" in refusals(hub)[0]["reason"]
    assert acl_version(agent) == 1
    assert_still_opens(hub, agent, card)


def test_another_sites_list_is_refused(network):
    hub, agent, card, intruder = network
    intruder.publish(protocol.acl_topic(SITE), sealed_list(hub.key, "borna", 7))
    assert wait_for(lambda: len(refusals(hub)) == 1, 10)
    assert "borna" in refusals(hub)[0]["reason"]
    assert refusals(hub)[0]["version"] == 7 and refusals(hub)[0]["applied_version"] == 1
    assert acl_version(agent) == 1
    assert_still_opens(hub, agent, card)


def test_a_replayed_old_version_is_refused(network):
    hub, agent, _card, intruder = network
    recorded = []
    spy = Intruder(hub.broker.port)
    spy.client.on_message = lambda _c, _u, m: recorded.append(m.payload)
    spy.client.subscribe(protocol.acl_topic(SITE), qos=1)  # the retained version 1
    assert wait_for(lambda: len(recorded) == 1, 5)
    hub.add_member("ben", bytes.fromhex("04B2C3D4E5F607"))
    hub.publisher.publish_site(SITE)
    assert wait_for(lambda: acl_version(agent) == 2, 10)
    intruder.publish(protocol.acl_topic(SITE), recorded[0])
    assert wait_for(lambda: len(refusals(hub)) == 1, 10)
    assert "not newer" in refusals(hub)[0]["reason"]
    assert acl_version(agent) == 2


def test_a_delta_on_the_wrong_base_is_refused_and_a_snapshot_follows(network):
    hub, agent, card, intruder = network
    broken = sealed_list(hub.key, SITE, 6, base=5, removed_cards=[])
    intruder.publish(protocol.acl_topic(SITE), broken)
    assert wait_for(lambda: len(refusals(hub)) == 1, 10)
    assert "does not apply to version 1" in refusals(hub)[0]["reason"]
    assert acl_version(agent) == 1
    assert_still_opens(hub, agent, card)


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff" * 7, os.urandom(300), b"HFS1" + b"\xff" * 80])
def test_garbage_on_every_subscribed_topic_changes_nothing(network, garbage):
    hub, agent, card, intruder = network
    topics = [protocol.acl_topic(SITE), protocol.state_topic(SITE, DEVICE)]
    topics += [protocol.command_topic(SITE, DEVICE, name) for name in protocol.COMMANDS]
    topics += [protocol.event_topic(SITE, DEVICE, kind) for kind in protocol.EventKind]
    for topic in topics:
        intruder.publish(topic, garbage)
    # The hub files bad events as dead letters; the edge refuses the list and ignores the rest.
    events_topics = len(protocol.EventKind)
    assert wait_for(lambda: len(hub.dead_letters()) >= events_topics, 10)
    assert {d.reason for d in hub.dead_letters()} and all(
        d.payload == garbage for d in hub.dead_letters()
    )
    # Refused on the acl topic and on cmd/acl_snapshot: counted both, reported once for now
    # (refusals are reported at a bounded rate).
    assert wait_for(lambda: agent.acl_updater.refusals.total == 2, 10)
    assert wait_for(lambda: len(refusals(hub)) == 1, 10)
    assert acl_version(agent) == 1
    assert agent.hardware.strike.is_unlocked is False
    assert_still_opens(hub, agent, card)
    assert all(w._thread.is_alive() for w in hub.workers)


def test_an_ack_for_another_store_or_unsent_events_deletes_nothing(network):
    from hub.commands import command_message

    hub, agent, card, _intruder = network
    for epoch, seq in (("ffffffffffffffff", 1000), (agent.store.epoch, 1000)):
        topic, payload, _ = command_message(
            hub.key, SITE, DEVICE, "ack", {"seq": seq, "epoch": epoch}
        )
        hub.client.publish(topic, payload, retain=True)
    # An ack of its own store beyond its last event: events were forged under its name.
    assert wait_for(lambda: "outbox" in agent.faults.current(), 10)
    assert_still_opens(hub, agent, card)  # the tap's event still reaches the hub
    # The hub's own ack (up to what it stored) is sound again: the fault clears.
    assert wait_for(lambda: "outbox" not in agent.faults.current(), 10)
    assert wait_for(lambda: len(hub.events()) == 3, 10)  # raised, cleared, the tap
    assert [e.seq for e in hub.events()] == [1, 2, 3]  # the edge forgot nothing it had
    faults = [e.data for e in hub.events() if e.kind == "device.fault"]
    assert [(f["component"], f.get("fault") is not None) for f in faults] == [
        ("outbox", True),
        ("outbox", False),
    ]


def test_an_event_out_of_range_is_filed_and_the_next_ones_flow(network):
    hub, agent, card, intruder = network
    topic = protocol.event_topic(SITE, DEVICE, "door.exit")
    huge = (
        b'{"schema":1,"event_id":"'
        + b"ab" * 16
        + b'","epoch":"'
        + b"cd" * 8
        + b'","seq":'
        + str(2**70).encode()
        + b',"at":"2026-11-22T00:00:00Z","data":{}}'
    )
    intruder.publish(topic, huge)
    assert wait_for(lambda: len(hub.dead_letters()) == 1, 10)
    assert "seq" in hub.dead_letters()[0].reason
    assert_still_opens(hub, agent, card)
