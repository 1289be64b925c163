"""What a door refuses from the broker: sealed lists, a raw client on the broker, and the
check that the door still opens for its members."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hafen import protocol
from hafen.acl import AccessList, AccessListDelta
from hafen.protocol import DeviceState
from hafen.signing import seal
from tests.support.clients import close_client
from tests.support.waiting import wait_for


class Client:
    """A plain MQTT 5 client on the broker: anyone can be one (ACLs come with provisioning)."""

    def __init__(self, port: int, client_id: str = "", clean_start: bool = True) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_message = lambda _c, _u, message: self.messages.append(message)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.reconnect_delay_set(60, 120)  # once put off, it stays off during a test
        self.client.connect("127.0.0.1", port, clean_start=clean_start)
        self.client.loop_start()
        assert self.connected.wait(5)

    def subscribe(self, topic: str) -> Client:
        self.client.subscribe(topic, qos=1)
        return self

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def leave(self) -> None:
        close_client(self.client)

    def states(self) -> list[DeviceState]:
        return [DeviceState.model_validate_json(m.payload) for m in self.messages]


ANNA = bytes.fromhex("04A1B2C3D4E5F6")


def sealed_list(key, site: str, version: int, **delta) -> bytes:
    now = datetime.now(UTC)
    doc: AccessList | AccessListDelta
    if delta:
        doc = AccessListDelta(site=site, version=version, **delta)
    else:
        doc = AccessList(site=site, version=version)  # an empty list: would lock everyone out
    return seal(key, protocol.acl_header(doc, now), protocol.acl_body(doc))


def assert_still_opens(hub, agent, card) -> None:
    before = len([e for e in hub.events() if e.kind == "door.decision"])
    card.present(ANNA)
    assert wait_for(
        lambda: len([e for e in hub.events() if e.kind == "door.decision"]) == before + 1, 10
    )
    assert [e for e in hub.events() if e.kind == "door.decision"][-1].data["allowed"] is True
