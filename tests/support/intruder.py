"""A third party on the broker (issue 13): publishes whatever it likes on devices' topics, and
builds the events and states a door would publish, to forge or to replay them."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hafen import protocol
from hafen.device_proof import device_key, seal_state
from hafen.protocol import DeviceState, encode_json
from tests.support.clients import close_client
from tests.support.edge import CARD_KEY
from tests.support.network import TestHub
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.support.network import TestHub

EPOCH = "00000000000000ee"
ALL_SNAPSHOTS = "hafen/v1/+/+/cmd/acl_snapshot"


class Intruder:
    """A plain MQTT client on the test broker; ``publish`` waits for the broker's ack."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._retained: set[str] = set()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
        if retain:
            self._retained.add(topic)

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        """Many at once (the broker acks them as they come), then wait for the last."""
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)

    def event(self, site: str, device: str, kind: str, data: dict, **envelope: Any) -> dict:
        """Publish an event; returns its envelope (event_id, epoch, seq)."""
        body = event_body(data, **envelope)
        self.publish(protocol.event_topic(site, device, kind), json.dumps(body).encode())
        return body

    def state(self, site: str, device: str, state: DeviceState, retain: bool = True) -> None:
        self.publish(protocol.state_topic(site, device), encode_json(state), retain=retain)

    def close(self) -> None:
        for topic in self._retained:  # leave no retained message behind in the broker
            self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        close_client(self.client)


def event_body(data: dict, **envelope: Any) -> dict:
    """An event as a door publishes it; ``envelope`` overrides event_id, epoch, seq, at."""
    return {
        "schema": 1,
        "event_id": envelope.get("event_id", os.urandom(16).hex()),
        "epoch": envelope.get("epoch", EPOCH),
        "seq": envelope.get("seq", 1),
        "at": envelope.get("at", datetime.now(UTC)).isoformat(),
        "data": data,
    }


def entry(member: str | None, allowed: bool = True, reason: str | None = None) -> dict:
    """The data of a door decision."""
    data: dict[str, Any] = {"card": "ab" * 16, "allowed": allowed}
    if member is not None:
        data["member"] = member
    if reason is not None:
        data["reason"] = reason
    return data


def sealed(site: str, device: str, key: bytes = CARD_KEY, **fields: Any) -> DeviceState:
    """A state with the door's proof, as only a holder of the card key can make."""
    state = DeviceState(**fields)
    return seal_state(device_key(key, site, device), site, device, state)


class Snapshots:
    """Counts the catch-up snapshots the broker delivers, per device."""

    def __init__(self, port: int) -> None:
        self.devices: list[str] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._record
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(ALL_SNAPSHOTS, qos=1)
        assert subscribed.wait(5)

    def _record(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        place = protocol.parse_device_topic(message.topic)
        with self._lock:
            self.devices.append(f"{place.site}.{place.device}" if place else message.topic)

    def count(self) -> int:
        with self._lock:
            return len(self.devices)

    def close(self) -> None:
        close_client(self.client)


#: The device whose events ``handled`` publishes: left out of what tests compare.
MARKER = "marker"


def handled(hub: TestHub, intruder: Intruder, site: str = "leipzig-ost") -> None:
    """Publish events of the marker device after the rest and wait until they are stored:
    with one worker and one publisher, everything sent before has been handled. Two, one after
    the other: the worker finishes a batch (marks, acknowledgements) before it takes the next.
    The marker must be registered before the hub starts ingesting (a worker reads the registry
    again at most once a second)."""
    for _ in range(2):
        epoch = os.urandom(8).hex()
        sent = intruder.event(site, MARKER, "door.exit", {"source": "button"}, epoch=epoch)
        marker = sent["event_id"]
        assert wait_for(lambda m=marker: any(e.event_id == m for e in hub.events()), 15)


@pytest.fixture
def intruder(broker):
    """A client on the broker that publishes whatever a test forges."""
    intruder = Intruder(broker.port)
    yield intruder
    intruder.close()


def retained(port: int, topic: str) -> bytes:
    """The message retained on ``topic`` (what anyone on the broker can read and keep)."""
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert wait_for(lambda: got != [], 5)
    finally:
        close_client(client)
    return got[0]
