"""`hafen hub init-ca`: the network's CA and the broker's certificate, checked by a real
mosquitto listening with TLS and by clients that trust the CA, or another one."""

from __future__ import annotations

import ssl
import stat
import threading

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from hafen.cli import app
from hub.pki import CaFiles, init_ca
from sim.broker import BrokerTls, LocalBroker

runner = CliRunner()


def make_ca(tmp_path, name: str = "ca", *hosts: str) -> CaFiles:
    files = CaFiles(tmp_path / name)
    init_ca(files, "leipzig", list(hosts) or ["localhost", "127.0.0.1"])
    return files


def test_init_ca_writes_a_ca_and_a_broker_certificate_with_owner_only_keys(tmp_path):
    result = runner.invoke(
        app,
        ["hub", "init-ca", "--dir", str(tmp_path / "ca"), "--network", "leipzig",
         "--broker-host", "mqtt.hafen.example", "--broker-host", "192.0.2.7"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    files = CaFiles(tmp_path / "ca")
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
    for key in (files.ca_key, files.broker_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_text() not in result.output
    assert "PRIVATE KEY" not in result.output
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    broker = x509.load_pem_x509_certificate(files.broker_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    broker.verify_directly_issued_by(ca)
    assert broker.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["mqtt.hafen.example", "192.0.2.7"]
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert "CA fingerprint (SHA-256):" in result.output


def test_init_ca_never_replaces_a_ca(tmp_path):
    files = make_ca(tmp_path)
    before = {p: p.read_bytes() for p in files.all()}
    result = runner.invoke(app, ["hub", "init-ca", "--dir", str(files.directory)])
    assert result.exit_code == 1
    assert "exists already; refusing to replace the network's CA" in result.output
    assert {p: p.read_bytes() for p in files.all()} == before


@pytest.mark.parametrize("host", ["", "no spaces please", "-lead.example", "a" * 64 + ".example"])
def test_a_bad_broker_name_is_refused_and_writes_nothing(tmp_path, host):
    result = runner.invoke(
        app, ["hub", "init-ca", "--dir", str(tmp_path / "ca"), "--broker-host", host]
    )
    assert result.exit_code == 2
    assert "neither an IP address nor a host name" in result.output
    assert not (tmp_path / "ca").exists()


def test_no_broker_name_is_refused(tmp_path):
    result = runner.invoke(app, ["hub", "init-ca", "--dir", str(tmp_path / "ca")])
    assert result.exit_code == 2
    assert "at least one host name" in result.output


def connects(port: int, trusted: CaFiles) -> bool:
    """Whether a TLS client trusting ``trusted`` connects to the broker on ``port``."""
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(trusted.ca_cert), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.on_connect = lambda *_: connected.set()
    try:
        client.connect("localhost", port)
    except (ssl.SSLError, OSError):
        return False
    client.loop_start()
    try:
        return connected.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()


def test_the_broker_speaks_tls_with_its_certificate_and_clients_check_it(tmp_path):
    files = make_ca(tmp_path)
    stranger = make_ca(tmp_path, "other-ca")
    tls = BrokerTls(files.ca_cert, files.broker_cert, files.broker_key)
    with LocalBroker(tmp_path / "broker", tls=tls) as broker:
        assert broker.tls_port is not None
        assert connects(broker.tls_port, trusted=files)
        # A client that trusts another CA refuses the broker (it is not the network's).
        assert not connects(broker.tls_port, trusted=stranger)
