"""The door's MQTT link on a real mosquitto holds whatever reaches it: nothing over the packet
limit, a bounded number of commands, a session taken over counted and reported, and every
state it publishes sealed with its proof."""

from __future__ import annotations

import time

import pytest

from edge.agent.remote import MAX_COMMAND_BYTES
from edge.agent.takeovers import COMPONENT as MQTT_FAULT, LOST
from hafen import protocol
from hafen.device_proof import device_key, state_is_genuine
from hafen.protocol import MAX_PACKET_BYTES, DeviceState
from sim.broker import LocalBroker
from tests.support.edge import CARD_KEY
from tests.support.network import TestHub, acl_version, connected_edge
from tests.support.refusals import ANNA, Client, assert_still_opens, sealed_list
from tests.support.waiting import wait_for

SITE, DEVICE = "leipzig-ost", "door-1"
CLIENT_ID = f"{SITE}.{DEVICE}"


def genuine(state: DeviceState) -> bool:
    return state_is_genuine(device_key(CARD_KEY, SITE, DEVICE), SITE, DEVICE, state)


@pytest.fixture
def unlimited_broker(tmp_path):
    """A broker set up without the shipped max_packet_size: only the clients' bound holds."""
    with LocalBroker(tmp_path / "broker", packet_limit=False) as broker:
        yield broker


@pytest.fixture
def network(tmp_path, mock_pins, unlimited_broker):
    hub = TestHub(tmp_path, unlimited_broker).start()
    hub.add_site(SITE)
    hub.add_member("anna", ANNA)
    hub.publisher.publish_site(SITE)
    try:
        with connected_edge(tmp_path, hub) as (agent, card):
            assert wait_for(lambda: acl_version(agent) == 1, 10)
            yield hub, agent, card
    finally:
        hub.stop()


def test_the_shipped_broker_refuses_a_publish_over_the_packet_limit(tmp_path):
    with LocalBroker(tmp_path / "broker") as broker:
        watcher = Client(broker.port).subscribe(protocol.acl_topic(SITE))
        sender = Client(broker.port)
        sender.client.publish(
            protocol.acl_topic(SITE), b"x" * (MAX_PACKET_BYTES + 1), qos=1, retain=True
        )
        assert sender.disconnected.wait(10), "the broker hangs up on the sender"
        Client(broker.port).publish(protocol.acl_topic(SITE), b"small")
        assert wait_for(lambda: len(watcher.messages) == 1, 5)
        assert watcher.messages[0].payload == b"small"  # the large one never went out
        late = Client(broker.port).subscribe(protocol.acl_topic(SITE))
        assert not wait_for(lambda: late.messages, 1), "nor was it retained"


def test_a_large_retained_list_never_reaches_the_door(network, unlimited_broker):
    hub, agent, card = network
    log = unlimited_broker.state_dir / "mosquitto.log"
    Client(unlimited_broker.port).publish(
        protocol.acl_topic(SITE), b"x" * (20 * 1024 * 1024), retain=True
    )
    # The door said in its CONNECT how much it takes: the broker drops it for the door.
    dropped = f"Dropping too large outgoing PUBLISH for {CLIENT_ID}"
    assert wait_for(lambda: dropped in log.read_text(), 10)
    assert_still_opens(hub, agent, card)
    assert agent.acl_updater.refusals.total == 0  # it never arrived, so nothing was refused
    assert acl_version(agent) == 1


def test_oversized_commands_are_dropped_unread(network, unlimited_broker):
    hub, agent, card = network
    replies = Client(unlimited_broker.port).subscribe(protocol.reply_topic(SITE, DEVICE, "unlock"))
    intruder = Client(unlimited_broker.port)
    topic = protocol.command_topic(SITE, DEVICE, "unlock")
    for _ in range(100):
        intruder.publish(topic, b"x" * (MAX_COMMAND_BYTES + 1))
    intruder.publish(topic, b"a small forged command")  # after them, in order
    assert wait_for(lambda: len(replies.messages) == 1, 10)
    assert b"not a signed hafen message" in replies.messages[0].payload
    assert agent.command_gate.dropped == 100  # none of the large ones was read or answered
    assert agent.hardware.strike.is_unlocked is False
    assert_still_opens(hub, agent, card)


def test_a_session_taken_over_is_counted_shown_and_reported_at_a_bounded_rate(
    network, unlimited_broker
):
    hub, agent, card = network
    states = Client(unlimited_broker.port).subscribe(protocol.state_topic(SITE, DEVICE))
    assert wait_for(lambda: states.messages, 5)
    for squats in range(1, 4):
        # Someone connects with the door's client id (a clean start wipes its session); the
        # door reconnects, putting the squatter off in turn.
        squatter = Client(unlimited_broker.port, client_id=CLIENT_ID, clean_start=True)
        assert wait_for(lambda n=squats: agent.link.takeovers.count == n, 5)
        assert wait_for(lambda: agent.link.connected, 10)
        squatter.leave()
    # mosquitto 2.0 closes the door's connection without a reason: the door tells by its
    # session being gone when it reconnected at once.
    assert agent.faults.current()[MQTT_FAULT] == LOST
    # Its state says so, sealed; the hub can tell it from a forged one.
    assert wait_for(lambda: states.states()[-1].takeovers == 3, 10)
    birth = states.states()[-1]
    assert birth.online and MQTT_FAULT in birth.faults and genuine(birth)
    assert_still_opens(hub, agent, card)
    # One fault event for three take-overs (at most one per few minutes).
    raised = [e.data for e in hub.events() if e.kind == "device.fault"]
    assert raised == [{"component": MQTT_FAULT, "fault": LOST}]


def test_every_state_the_door_publishes_is_sealed(network, unlimited_broker):
    hub, agent, _card = network
    states = Client(unlimited_broker.port).subscribe(protocol.state_topic(SITE, DEVICE))
    assert wait_for(lambda: states.states() and states.states()[-1].online, 5)
    # A delta this door cannot apply: it has seen a newer version than its own.
    hub_signed = sealed_list(hub.key, SITE, 6, base=5, removed_cards=[])
    Client(unlimited_broker.port).publish(protocol.acl_topic(SITE), hub_signed)
    assert wait_for(lambda: states.states()[-1].seen_version == 6, 10)
    behind = states.states()[-1]
    assert (behind.acl_version, behind.epoch) == (1, agent.store.epoch) and genuine(behind)
    # The will it gave the broker, sealed when it was set (for its next connection).
    will = DeviceState.model_validate_json(agent.link.will)
    assert not will.online and will.session == agent.link.session
    assert will.epoch == agent.store.epoch and genuine(will)
    # A state that is not the door's (no proof, or another key's) is not genuine.
    forged = DeviceState(online=True, session=will.session + 5, acl_version=6)
    assert not genuine(forged)
    assert not genuine(forged.model_copy(update={"proof": "0" * 64}))
    assert wait_for(lambda: agent.link.connected, 10)
    count = len(states.messages)
    agent.link.stop()  # the goodbye
    assert wait_for(lambda: len(states.messages) > count, 5)
    goodbye = states.states()[-1]
    assert not goodbye.online and genuine(goodbye)


def test_forged_states_on_the_door_topic_are_answered_at_a_bounded_rate(network, unlimited_broker):
    _hub, agent, _card = network
    assert wait_for(lambda: agent.acl_updater.version == 1, 5)
    states = Client(unlimited_broker.port).subscribe(protocol.state_topic(SITE, DEVICE))
    assert wait_for(lambda: states.messages and states.states()[-1].acl_version == 1, 5)
    seen = len(states.messages)
    intruder = Client(unlimited_broker.port)
    late = protocol.encode_json(DeviceState(online=False, session=agent.link.session - 1))
    for _ in range(50):
        intruder.publish(protocol.state_topic(SITE, DEVICE), late, retain=True)
    # The birth is put back at once, and once more when the flood has passed (the forged
    # wills kept coming after the first answer): not once per forged will.
    assert wait_for(lambda: states.states()[-1].online, 10)
    births = [s for s in states.states()[seen:] if s.online]
    assert len(births) == 2 and all(genuine(s) for s in births)


def test_the_take_over_fault_clears_after_a_quiet_while():
    from edge.agent.faults import FaultBoard
    from edge.agent.takeovers import TakeoverWatch
    from hafen.protocol import DeviceFault, EventPayload

    board, recorded = FaultBoard(), list[EventPayload]()
    watch = TakeoverWatch(board, recorded.append, quiet_seconds=0.3, report_every=60)
    try:
        watch.taken_over()
        time.sleep(0.2)
        watch.taken_over()  # starts the quiet period again
        time.sleep(0.2)
        assert MQTT_FAULT in board.current()  # 0.4 s after the first, 0.2 s after the last
        assert wait_for(lambda: MQTT_FAULT not in board.current(), 2)
        faults = [e for e in recorded if isinstance(e, DeviceFault)]
        assert len(faults) == len(recorded)
        assert [(e.component, e.fault is None) for e in faults] == [
            (MQTT_FAULT, False),  # the second take-over within the minute: not recorded
            (MQTT_FAULT, True),  # cleared
        ]
        assert watch.count == 2
    finally:
        watch.stop()
