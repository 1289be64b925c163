"""The self-test reaches the broker as the door does, over TLS where the door uses it, and
leaves the door's session, and what the hub queued in it, for the agent. A real mosquitto."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.agent.config import MqttConfig
from edge.selftest.broker import check_broker, client_id
from edge.selftest.results import Outcome
from hafen import protocol
from sim.broker import BrokerTls, LocalBroker
from tests.support.clients import close_client
from tests.support.tls import device_identity, make_ca
from tests.support.waiting import wait_for

SITE, DEVICE = "leipzig-ost", "door-1"
DOOR = client_id(SITE, DEVICE)
EXPIRY = 3600


class DoorSession:
    """The agent's side: a persistent session subscribed to the door's commands."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[bytes] = []
        self.session_present: bool | None = None

    def connect(self) -> DoorSession:
        connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=DOOR, protocol=mqtt.MQTTv5)

        def on_connect(_c, _u, flags, _reason, _p) -> None:
            self.session_present = bool(flags.session_present)
            connected.set()

        client.on_connect = on_connect
        client.on_message = lambda _c, _u, message: self.messages.append(bytes(message.payload))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = EXPIRY
        client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        client.loop_start()
        assert connected.wait(5)
        client.subscribe(protocol.own_commands(SITE, DEVICE), qos=1)
        self.client = client
        return self

    def leave(self) -> None:
        close_client(self.client)


def publish(port: int, topic: str, payload: bytes) -> None:
    hub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hub", protocol=mqtt.MQTTv5)
    hub.connect("127.0.0.1", port)
    hub.loop_start()
    hub.publish(topic, payload, qos=1).wait_for_publish(5)
    close_client(hub)


def test_the_check_leaves_the_doors_session_and_what_waits_in_it(tmp_path):
    """An unlock the hub sent while the door was stopped still reaches the agent afterwards:
    a clean start would have wiped it, an acknowledgement would have taken it."""
    with LocalBroker(tmp_path / "broker") as broker:
        door = DoorSession(broker.port).connect()
        door.leave()
        publish(broker.port, protocol.command_topic(SITE, DEVICE, "unlock"), b"while away")
        cfg = MqttConfig(host="127.0.0.1", port=broker.port, session_expiry_seconds=EXPIRY)
        # Held long enough for the broker to deliver the unlock to this connection.
        result = check_broker(cfg, DOOR, hold=0.5)
        assert result.outcome is Outcome.PASS, result.detail
        assert result.detail.endswith("as the door, its session kept")
        door = DoorSession(broker.port).connect()
        try:
            assert door.session_present is True
            assert wait_for(lambda: door.messages == [b"while away"], 5), door.messages
        finally:
            door.leave()


def test_the_check_speaks_tls_with_the_doors_ca_and_fails_without_it(tmp_path):
    files = make_ca(tmp_path)
    tls = BrokerTls(files.ca_cert, files.broker_cert, files.broker_key)
    with LocalBroker(tmp_path / "broker", tls=tls) as broker:
        assert broker.tls_port is not None
        good = MqttConfig(host="localhost", port=broker.tls_port, ca_file=files.ca_cert)
        result = check_broker(good, DOOR)
        assert result.outcome is Outcome.PASS, result.detail
        assert f"connected to localhost:{broker.tls_port} over TLS" in result.detail
        stranger = make_ca(tmp_path, "another-ca")
        wrong = good.model_copy(update={"ca_file": stranger.ca_cert})
        refused = check_broker(wrong, DOOR)
        assert refused.outcome is Outcome.FAIL and "certificate verify failed" in refused.detail
        plain = good.model_copy(update={"ca_file": None})
        silent = check_broker(plain, DOOR, timeout=0.5)
        assert silent.outcome is Outcome.FAIL
        assert "without TLS (no ca_file)" in silent.detail


def test_the_check_shows_the_doors_certificate_where_the_broker_asks_for_one(tmp_path):
    """The shipped broker asks every device for its certificate (hafen provision enrol)."""
    files = make_ca(tmp_path)
    cert, key = device_identity(tmp_path, files, SITE, DEVICE)
    tls = BrokerTls(files.ca_cert, files.broker_cert, files.broker_key, require_certificate=True)
    with LocalBroker(tmp_path / "broker", tls=tls) as broker:
        assert broker.tls_port is not None
        door = MqttConfig(
            host="localhost",
            port=broker.tls_port,
            ca_file=files.ca_cert,
            cert_file=cert,
            key_file=key,
        )
        result = check_broker(door, DOOR)
        assert result.outcome is Outcome.PASS, result.detail
        assert "over TLS with the door's certificate as the door" in result.detail
        anonymous = door.model_copy(update={"cert_file": None, "key_file": None})
        refused = check_broker(anonymous, DOOR, timeout=5)
        assert refused.outcome is Outcome.FAIL
        assert "closed the connection without answering" in refused.detail
