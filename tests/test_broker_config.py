"""The broker's listener as `hafen hub broker-config` renders it, run by a real mosquitto:
TLS only, a certificate of the network and a password of one's own for everyone."""

from __future__ import annotations

import contextlib
import getpass
import socket
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from hafen import protocol
from hafen.cli import app
from hub.broker_rights import BrokerRights, device_rights
from hub.mqtt import BrokerLogin, HubClient
from hub.settings import load_hub_settings
from sim.broker import SHIPPED_CONF_DIR, free_port
from tests.support.tls import Device, device_identity, make_ca
from tests.support.waiting import wait_for

SITE = "leipzig-ost"
runner = CliRunner()


@pytest.fixture
def tls_broker(tmp_path):
    """mosquitto with the shipped settings and the rendered listener, as on the hub's machine."""
    files = make_ca(tmp_path)
    rights_file = tmp_path / "dynamic-security.json"
    port = free_port()
    rendered = runner.invoke(
        app,
        ["hub", "broker-config", "--ca-dir", str(files.directory), "--rights-file",
         str(rights_file), "--secrets-dir", str(tmp_path / "broker"), "--port", str(port),
         "--bind", "127.0.0.1"],
    )  # fmt: skip
    assert rendered.exit_code == 0, rendered.output
    assert "made" in rendered.stderr and "listener" in rendered.stdout
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"include_dir {SHIPPED_CONF_DIR}\n"
        f"persistence_location {tmp_path}/\n"
        f"log_dest file {tmp_path / 'mosquitto.log'}\n"
        f"user {getpass.getuser()}\n" + rendered.stdout
    )
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: _listening(port), 10)
        yield files, port
    finally:
        process.terminate()
        process.wait(10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_the_rendered_listener_takes_only_devices_with_certificate_and_password(
    tmp_path, tls_broker
):
    files, port = tls_broker
    admin = (tmp_path / "broker" / "hafen-admin.password").read_text().strip()
    login = BrokerLogin("hafen-admin", admin, files.ca_cert, files.hub_cert, files.hub_key)
    rights = BrokerRights("localhost", port, login)
    try:
        rights.send(device_rights(SITE, "door-1", "door-1-secret"))
    finally:
        rights.close()
    identity = device_identity(tmp_path, files, SITE, "door-1")
    client_id = f"{SITE}.door-1"
    door = Device(port, files, identity, client_id, (client_id, "door-1-secret"))
    door.close()
    assert door.connected.is_set()
    no_password = Device(port, files, identity, client_id)
    no_password.close()
    assert not no_password.connected.is_set()
    # Plain MQTT is not spoken at all.
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    plain.username_pw_set(client_id, "door-1-secret")
    answered: list[object] = []
    plain.on_connect = lambda _c, _u, _f, reason, _p: answered.append(reason)
    try:
        plain.connect("127.0.0.1", port)
        plain.loop_start()
        time.sleep(1.0)
    except OSError:
        pass
    finally:
        plain.loop_stop()
    assert not any(getattr(r, "value", 1) == 0 for r in answered)


def test_broker_config_needs_the_ca(tmp_path):
    result = runner.invoke(app, ["hub", "broker-config", "--ca-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "run `hafen hub init-ca`" in result.output


def _hub_settings(tmp_path, files, port: int) -> str:
    return (
        f"[broker]\nhost = 'localhost'\nport = {port}\n"
        f"[broker.tls]\nca_file = '{files.ca_cert}'\ncert_file = '{files.hub_cert}'\n"
        f"key_file = '{files.hub_key}'\n"
    )


def test_broker_setup_gives_each_hub_service_only_its_own_rights(tmp_path, tls_broker):
    files, port = tls_broker
    config = tmp_path / "hub.toml"
    config.write_text(_hub_settings(tmp_path, files, port))
    secrets_dir = str(tmp_path / "broker")
    result = runner.invoke(
        app, ["hub", "broker-setup", "-c", str(config), "--secrets-dir", secrets_dir]
    )
    assert result.exit_code == 0, result.output
    # What it prints is the settings' own text: appended, the services sign in with it.
    config.write_text(config.read_text() + result.stdout.split("\n", 1)[1])
    settings = load_hub_settings(config, {})
    passwords = {p: p.read_bytes() for p in (tmp_path / "broker").iterdir()}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in passwords)

    admin = BrokerRights("localhost", port, settings.broker.login("admin"))
    try:
        admin.send(device_rights(SITE, "door-1", "door-1-secret"))
    finally:
        admin.close()
    client_id = f"{SITE}.door-1"
    door = Device(port, files, device_identity(tmp_path, files, SITE, "door-1"), client_id,
                  (client_id, "door-1-secret"))  # fmt: skip
    heard: list[str] = []
    door.client.on_message = lambda _c, _u, message: heard.append(message.topic)
    assert door.subscribe(protocol.own_commands(SITE, "door-1")).value < 0x80
    assert door.subscribe(protocol.acl_topic(SITE)).value < 0x80
    ingested: list[str] = []
    ingest = HubClient(
        "localhost", port, "hafen-ingest-1",
        subscriptions=[(protocol.shared("hafen-ingest", protocol.ALL_EVENTS), 1)],
        on_message=lambda message: ingested.append(message.topic),
        login=settings.broker.login("ingest"),
    )  # fmt: skip
    publisher = HubClient(
        "localhost", port, "hafen-hub-api",
        subscriptions=[(protocol.ALL_EVENTS, 1)],  # not its business: refused
        on_message=lambda message: ingested.append("publisher:" + message.topic),
        login=settings.broker.login("publisher"),
    )  # fmt: skip
    admin_reader = HubClient(
        "localhost", port, "hafen-admin-reader",
        subscriptions=[(protocol.ALL_EVENTS, 1)],  # `dynsec init` allowed it; setup took it away
        on_message=lambda message: ingested.append("admin:" + message.topic),
        login=settings.broker.login("admin"),
    )  # fmt: skip
    try:
        ingest.start()
        publisher.start()
        admin_reader.start()
        assert ingest.connected.is_set() and publisher.connected.is_set()
        assert admin_reader.connected.is_set()
        event = protocol.event_topic(SITE, "door-1", "door.decision")
        door.client.publish(event, b"{}", qos=1)
        assert wait_for(lambda: ingested == [event], 5), ingested
        ingest.publish(protocol.command_topic(SITE, "door-1", "ack"), b"ack")
        publisher.publish(protocol.acl_topic(SITE), b"list", retain=True)
        # Ingest sends acks, never a list or an unlock: the broker drops it for trying.
        for forbidden in (
            protocol.acl_topic(SITE),
            protocol.command_topic(SITE, "door-1", "unlock"),
        ):
            assert wait_for(ingest.connected.is_set, 10)
            with contextlib.suppress(TimeoutError):
                ingest.publish(forbidden, b"forged", timeout=1)
        publisher.publish(protocol.command_topic(SITE, "door-1", "unlock"), b"unlock")
        expected = [
            protocol.command_topic(SITE, "door-1", "ack"),
            protocol.acl_topic(SITE),
            protocol.command_topic(SITE, "door-1", "unlock"),
        ]
        assert wait_for(lambda: heard == expected, 5), heard
        time.sleep(0.5)  # nothing more arrives: not the forged list, no event for publisher
        assert heard == expected and ingested == [event]
    finally:
        ingest.stop()
        publisher.stop()
        admin_reader.stop()
        door.close()

    again = runner.invoke(
        app, ["hub", "broker-setup", "-c", str(config), "--secrets-dir", secrets_dir]
    )
    assert again.exit_code == 0, again.output
    assert {p: p.read_bytes() for p in (tmp_path / "broker").iterdir()} == passwords
    ingest = HubClient("localhost", port, "hafen-ingest-1", login=settings.broker.login("ingest"))
    try:
        ingest.start()
        assert ingest.connected.is_set()
    finally:
        ingest.stop()
