"""`hafen hub init-ca`: the network's CA and the broker's certificate, checked by a real
mosquitto listening with TLS and by clients that trust the CA, or another one."""

from __future__ import annotations

import ssl
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from hafen.cli import app
from hub.pki import (
    MAX_CSR_BYTES,
    CaFiles,
    RequestRefused,
    issue_device_certificate,
    revocation_list,
)
from sim.broker import BrokerTls, LocalBroker
from tests.support.clients import close_client
from tests.support.tls import device_identity, make_ca, request_for

runner = CliRunner()


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
    crl = x509.load_pem_x509_crl(files.crl.read_bytes())
    ca_public = ca.public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(ca_public) and len(crl) == 0


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


def connects(port: int, trusted: CaFiles, identity: tuple[Path, Path] | None = None) -> bool:
    """Whether a TLS client trusting ``trusted`` (showing ``identity``, certificate and key
    files, if given) connects to the broker on ``port``."""
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    certfile, keyfile = (str(p) for p in identity) if identity else (None, None)
    client.tls_set(
        ca_certs=str(trusted.ca_cert),
        certfile=certfile,
        keyfile=keyfile,
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    answered = threading.Event()  # connected, or turned away

    def on_connect(_c, _u, _f, reason, _p) -> None:
        if reason == 0:
            connected.set()
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *_: answered.set()
    try:
        client.connect("localhost", port)
    except (ssl.SSLError, OSError):
        return False
    client.loop_start()
    try:
        answered.wait(5)
        return connected.is_set()
    finally:
        close_client(client)


def test_the_broker_speaks_tls_with_its_certificate_and_clients_check_it(tmp_path):
    files = make_ca(tmp_path)
    stranger = make_ca(tmp_path, "other-ca")
    tls = BrokerTls(files.ca_cert, files.broker_cert, files.broker_key)
    with LocalBroker(tmp_path / "broker", tls=tls) as broker:
        assert broker.tls_port is not None
        assert connects(broker.tls_port, trusted=files)
        # A client that trusts another CA refuses the broker (it is not the network's).
        assert not connects(broker.tls_port, trusted=stranger)


def test_a_device_certificate_names_the_device_as_registered_and_only_a_client(tmp_path):
    files = make_ca(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_device_certificate(files, request_for(key, "hafen-hub"), "leipzig-ost", "door-1")
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "leipzig-ost.door-1"  # not what the request asked for
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))


def test_requests_that_are_not_taken(tmp_path):
    files = make_ca(tmp_path)
    good = request_for(ec.generate_private_key(ec.SECP256R1()), "door")
    der = x509.load_pem_x509_csr(good).public_bytes(serialization.Encoding.DER)
    tampered = x509.load_der_x509_csr(der.replace(b"door", b"gate", 1))  # signed for "door"
    forged = tampered.public_bytes(serialization.Encoding.PEM)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for request, why in (
        (b"hello", "not a PEM certificate request"),
        (b"x" * (MAX_CSR_BYTES + 1), f"over {MAX_CSR_BYTES}"),
        (request_for(rsa_key, "door"), "not an ECDSA P-256 key"),
        (request_for(ec.generate_private_key(ec.SECP384R1()), "door"), "not an ECDSA P-256"),
    ):
        with pytest.raises(RequestRefused, match=why):
            issue_device_certificate(files, request, "leipzig-ost", "door-1")
    with pytest.raises(RequestRefused, match="signature does not verify"):
        issue_device_certificate(files, forged, "leipzig-ost", "door-1")


def test_only_devices_of_the_network_that_are_not_revoked_connect(tmp_path):
    files = make_ca(tmp_path)
    stranger = make_ca(tmp_path, "other-ca")
    door_1 = device_identity(tmp_path, files, "leipzig-ost", "door-1")
    door_2 = device_identity(tmp_path, files, "leipzig-ost", "door-2")
    foreign = device_identity(tmp_path / "other-ca", stranger, "leipzig-ost", "door-1")
    revoked_serial = x509.load_pem_x509_certificate(door_2[0].read_bytes()).serial_number
    crl = tmp_path / "ca.crl"
    crl.write_bytes(revocation_list(files, [(revoked_serial, datetime.now(UTC))]))
    tls = BrokerTls(
        files.ca_cert, files.broker_cert, files.broker_key, require_certificate=True, crlfile=crl
    )
    with LocalBroker(tmp_path / "broker", tls=tls) as broker:
        assert broker.tls_port is not None
        assert connects(broker.tls_port, files, door_1)
        assert not connects(broker.tls_port, files)  # no certificate
        assert not connects(broker.tls_port, files, foreign)  # another CA's
        assert not connects(broker.tls_port, files, door_2)  # revoked
