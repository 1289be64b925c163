"""Per-device rights at a real mosquitto with TLS and the dynamic-security plugin: a device
publishes only under its own prefix and reads only its commands, its state and its site's
list."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hafen import protocol
from hub.broker_rights import (
    AdminSession,
    BrokerRefused,
    BrokerRights,
    ServiceRights,
    device_removal,
    device_rights,
)
from hub.mqtt import BrokerLogin
from sim.broker import BrokerTls, LocalBroker
from tests.support.clients import close_client
from tests.support.tls import Device, device_identity, make_ca
from tests.support.waiting import wait_for

SITE = "leipzig-ost"
ADMIN = ("hafen-admin", "admin-secret")
ADMIN_LOGIN = BrokerLogin(*ADMIN)
SPY = ServiceRights("hafen-spy", "spy-secret", subscribe=("hafen/#",))
#: MQTT 5's reason code for a publish the broker refused.
NOT_AUTHORIZED = 0x87


class Spy:
    """A hub service allowed to read hafen/#: what actually got through."""

    def __init__(self, port: int) -> None:
        self.topics: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(SPY.name, SPY.password)
        self.client.on_message = lambda _c, _u, m: self.topics.append(m.topic)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe("hafen/#", qos=1)
        assert subscribed.wait(5)

    def close(self) -> None:
        close_client(self.client)


@pytest.fixture
def network(tmp_path):
    files = make_ca(tmp_path)
    tls = BrokerTls(files.ca_cert, files.broker_cert, files.broker_key, require_certificate=True)
    with LocalBroker(tmp_path / "broker", tls=tls, admin=ADMIN) as broker:
        rights = BrokerRights("127.0.0.1", broker.port, ADMIN_LOGIN)
        try:
            rights.send(SPY.commands())
            for device in ("door-1", "door-2"):
                rights.send(device_rights(SITE, device))
            yield files, broker, rights
        finally:
            rights.close()


def test_a_device_publishes_and_reads_only_its_own(tmp_path, network):
    files, broker, _rights = network
    spy = Spy(broker.port)
    door_1 = Device(
        broker.tls_port, files, device_identity(tmp_path, files, SITE, "door-1"), f"{SITE}.door-1"
    )
    try:
        assert door_1.connected.is_set()
        own = protocol.event_topic(SITE, "door-1", "door.exit")
        other = protocol.event_topic(SITE, "door-2", "door.exit")
        other_site = protocol.event_topic("borna", "door-1", "door.exit")
        # One at a time, each answered before the next: the broker refuses the others' topics
        # (and drops the door for it, which paho repairs), and takes its own.
        assert door_1.publish(other).value == NOT_AUTHORIZED
        assert door_1.publish(other_site).value == NOT_AUTHORIZED
        assert door_1.publish(own).value == 0
        # What got through: the refused ones were answered before the own one was sent.
        assert wait_for(lambda: own in spy.topics, 5)
        assert spy.topics == [own]
        assert door_1.client.is_connected()
        assert door_1.subscribe(protocol.own_commands(SITE, "door-1")).value == 1
        assert door_1.subscribe(protocol.acl_topic(SITE)).value == 1
        assert door_1.subscribe("#").is_failure
        assert door_1.subscribe(protocol.acl_topic("borna")).is_failure
        assert door_1.subscribe(protocol.own_commands(SITE, "door-2")).is_failure
    finally:
        door_1.close()
        spy.close()


def test_the_plugin_refusing_a_command_is_an_error(network):
    _files, _broker, rights = network
    with pytest.raises(BrokerRefused, match="createRole"):
        rights.send(device_rights(SITE, "door-1"))  # exists already


def test_with_a_password_beside_its_certificate_a_device_is_itself_and_can_be_cut_off(tmp_path):
    """mosquitto 2.0 holds a client that signs in with its certificate alone neither to its
    client id nor to its client existing (mosquitto#2999). Signing in with a password as
    well puts the plugin's own checks back: the client id, and the client itself."""
    files = make_ca(tmp_path)
    tls = BrokerTls(
        files.ca_cert,
        files.broker_cert,
        files.broker_key,
        require_certificate=True,
        identity_as_username=False,
    )
    secret = {d: f"{d}-secret" for d in ("door-1", "door-2")}
    with LocalBroker(tmp_path / "broker", tls=tls, admin=ADMIN) as broker:
        rights = BrokerRights("127.0.0.1", broker.port, ADMIN_LOGIN)
        try:
            for device in secret:
                rights.send(device_rights(SITE, device, secret[device]))
            identity = device_identity(tmp_path, files, SITE, "door-1")
            port = broker.tls_port
            assert port is not None

            def connects(client_id: str, user: str, password: str) -> bool:
                door = Device(port, files, identity, client_id, (user, password))
                door.close()
                return door.connected.is_set()

            door_1, door_2 = f"{SITE}.door-1", f"{SITE}.door-2"
            assert connects(door_1, door_1, secret["door-1"])
            assert not connects(door_2, door_1, secret["door-1"])  # another door's client id
            assert not connects(door_1, door_1, "guessed")
            rights.send(device_removal(SITE, "door-1"))
            assert not connects(door_1, door_1, secret["door-1"])  # cut off at once
        finally:
            rights.close()


def test_the_admin_session_survives_a_broker_restart(tmp_path):
    """The first command after the broker came back works: the session notices its
    connection was dropped (paho's own reconnect would have lost the plugin's answers)."""
    with LocalBroker(tmp_path / "broker", admin=ADMIN) as broker:
        session = AdminSession("127.0.0.1", broker.port, ADMIN_LOGIN)
        try:
            with session.rights() as rights:
                rights.send(device_rights(SITE, "door-1", "door-1-secret"))
            dropped = session._rights
            broker.stop()
            broker.start()
            assert dropped is not None  # paho has reconnected it by itself, without answers
            assert wait_for(dropped.client.is_connected, 10)
            with session.rights() as rights:
                answer = rights.ask({"command": "getClient", "username": f"{SITE}.door-1"})
            assert "error" not in answer, answer
        finally:
            session.close()
