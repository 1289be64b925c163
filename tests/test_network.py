"""Edge and hub through a real mosquitto: events stored once, access lists signed and applied."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from hub.commands import command_message
from hub.services.cards import revoke_card
from tests.support.network import TestHub, acl_version, connected_edge
from tests.support.waiting import wait_for

ANNA = bytes.fromhex("04A1B2C3D4E5F6")
BEN = bytes.fromhex("04B2C3D4E5F607")
SITE = "leipzig-ost"


@pytest.fixture
def hub(tmp_path, broker, hub_url):
    hub = TestHub(tmp_path, broker, url=hub_url).start()
    hub.add_site(SITE)
    yield hub
    hub.stop()


def test_a_tap_is_stored_at_the_hub_exactly_once(tmp_path, hub, mock_pins):
    hub.add_member("anna", ANNA)
    hub.publisher.publish_site(SITE)
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) == 1, 10)
        assert card.present(ANNA) is not None
        assert wait_for(lambda: len(hub.events()) == 1, 10)
        [event] = hub.events()
        assert (event.site, event.device, event.seq) == (SITE, "door-1", 1)
        assert event.kind == "door.decision"
        assert event.data["allowed"] is True and event.data["member"] == "anna"
        # The hub's acknowledgement lets the edge forget the event.
        assert wait_for(lambda: agent.store.pending_events() == [], 10)
    assert len(hub.events()) == 1
    assert hub.dead_letters() == []


def test_revoking_a_card_at_the_hub_makes_the_edge_deny_it(tmp_path, hub, mock_pins):
    anna = hub.add_member("anna", ANNA)
    hub.add_member("ben", BEN)
    hub.publisher.publish_site(SITE)
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) == 1, 10)
        [published] = revoke_card(hub.engine, hub.publisher, anna).published
        assert published.kind == "delta" and published.version == 2
        assert wait_for(lambda: acl_version(agent) == 2, 10)
        card.present(ANNA)
        card.present(BEN)
        decided = lambda: [e.data for e in hub.events() if e.kind == "door.decision"]  # noqa: E731
        assert wait_for(lambda: len(decided()) == 2, 10)
        decisions = {d["member"]: d for d in decided()}
        assert decisions["anna"]["allowed"] is False and decisions["anna"]["reason"] == "revoked"
        assert decisions["ben"]["allowed"] is True
        time.sleep(3.5)  # past the hub's second look at the state the door sent on connect
    # The retained list was all the door needed: no stale snapshot came after it.
    assert [e.kind for e in hub.events()] == ["door.decision", "door.decision"]


def test_a_door_with_a_new_store_gets_a_snapshot_of_its_own(tmp_path, hub, mock_pins):
    """A replaced SD card: the broker still holds the door's session and hands it the deltas
    queued while it was off, which do not fit its empty store; the hub sees the door lag and
    sends it the whole list."""
    hub.add_member("anna", ANNA)
    hub.publisher.publish_site(SITE)
    with connected_edge(tmp_path, hub) as (agent, _):
        assert wait_for(lambda: acl_version(agent) == 1, 10)
    cleo = hub.add_member("cleo", bytes.fromhex("04C3D4E5F60718"))
    hub.publisher.publish_member("cleo", {SITE})
    revoke_card(hub.engine, hub.publisher, cleo)
    new_card = tmp_path / "new-sd-card"
    new_card.mkdir()
    with connected_edge(new_card, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) == 3, 15)
        card.present(bytes.fromhex("04C3D4E5F60718"))
        assert wait_for(lambda: any(e.kind == "door.decision" for e in hub.events()), 10)
    refused = [e.data for e in hub.events() if e.kind == "acl.refused"]
    assert refused and all("does not apply" in r["reason"] for r in refused)
    [decision] = [e.data for e in hub.events() if e.kind == "door.decision"]
    assert decision["member"] == "cleo" and decision["allowed"] is False  # revoked


def replies(hub, port):
    """Collect command replies published by devices."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from hafen import protocol

    got: list[dict] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
    client.connect("127.0.0.1", port)
    client.subscribe(protocol.ALL_REPLIES, qos=1)
    client.loop_start()
    return got


def test_remote_unlock_opens_the_door_and_a_stale_command_is_refused(tmp_path, hub, mock_pins):
    hub.add_member("anna", ANNA)
    hub.publisher.publish_site(SITE)
    got = replies(hub, hub.broker.port)
    with connected_edge(tmp_path, hub, unlock_seconds=0.3) as (_agent, _card):
        relay = mock_pins.pin(17)
        stale = datetime.now(UTC) - timedelta(minutes=10)
        topic, payload, _ = command_message(
            hub.key, SITE, "door-1", "unlock", {"seconds": 1}, issued_at=stale
        )
        hub.client.publish(topic, payload)
        assert wait_for(lambda: len(got) == 1, 10)
        assert got[0]["ok"] is False and "too old" in got[0]["detail"]
        assert relay.state is False
        topic, payload, command_id = command_message(
            hub.key, SITE, "door-1", "unlock", {"seconds": 1}
        )
        hub.client.publish(topic, payload)
        assert wait_for(lambda: relay.state is True, 10)
        assert wait_for(lambda: len(got) == 2, 10)
        assert got[1] == {"schema": 1, "command": command_id, "ok": True}
        hub.client.publish(topic, payload)  # the same command again: a replay
        assert wait_for(lambda: len(got) == 3, 10)
        assert got[2]["ok"] is False and "already" in got[2]["detail"]
        assert wait_for(lambda: relay.state is False, 3)
        assert wait_for(lambda: [e.kind for e in hub.events()] == ["door.remote_unlock"], 10)
        assert hub.events()[0].data == {"command": command_id, "seconds": 1.0}


def test_a_late_will_never_marks_a_reconnected_device_offline(tmp_path, hub, mock_pins):
    from hafen import protocol
    from hafen.protocol import DeviceState, encode_json

    hub.publisher.publish_site(SITE)
    with connected_edge(tmp_path, hub) as (agent, _card):
        session = agent.link.session
        assert wait_for(lambda: device_state(hub) is not None and device_state(hub).online, 10)
        # The will of an earlier connection arrives late, as after a takeover.
        late = encode_json(DeviceState(online=False, session=session - 1))
        hub.client.publish(protocol.state_topic(SITE, "door-1"), late, retain=True)
        time.sleep(1.0)
        state = device_state(hub)
        assert state.online is True and state.session == session
    assert wait_for(lambda: device_state(hub).online is False, 10)  # a clean goodbye counts


def device_state(hub):
    from sqlalchemy import select

    from hub import db

    with hub.engine.connect() as conn:
        return conn.execute(select(db.device_states)).one_or_none()
