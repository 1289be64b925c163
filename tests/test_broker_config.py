"""The broker's listener as `hafen hub broker-config` renders it, run by a real mosquitto:
TLS only, a certificate of the network and a password of one's own for everyone."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from hafen.cli import app
from hub.broker_rights import BrokerRights, device_rights
from sim.broker import SHIPPED_CONF_DIR, free_port, init_dynamic_security
from tests.support.tls import Device, device_identity, make_ca
from tests.support.waiting import wait_for

SITE = "leipzig-ost"
runner = CliRunner()


@pytest.fixture
def tls_broker(tmp_path):
    """mosquitto with the shipped settings and the rendered listener, as on the hub's machine."""
    files = make_ca(tmp_path)
    rights_file = tmp_path / "dynamic-security.json"
    init_dynamic_security(rights_file, "hafen-admin", "admin-secret")
    port = free_port()
    rendered = runner.invoke(
        app,
        ["hub", "broker-config", "--ca-dir", str(files.directory), "--rights-file",
         str(rights_file), "--port", str(port), "--bind", "127.0.0.1"],
    )  # fmt: skip
    assert rendered.exit_code == 0, rendered.output
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
    hub_identity = device_identity(tmp_path, files, "hub", "rights")
    rights = BrokerRights(
        "localhost", port, "hafen-admin", "admin-secret", tls=(files.ca_cert, *hub_identity)
    )
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
