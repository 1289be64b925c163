"""Provisioning end to end (issue 14): a network set up with the shipped commands, devices
enrolled with one-time tokens, everything over TLS at a broker that trusts no one."""

from __future__ import annotations

import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select, update

from edge.agent.enrolment import EnrolmentFailed, ask_hub, request_for
from hafen import protocol
from hafen.cli import app
from hafen.enrolment import EnrolmentRequest
from hub import db
from hub.auth import Principal, Role
from hub.broker_rights import device_rights
from hub.services import enrolment
from hub.services.fleet import fleet_rows
from tests.support.edge import ANNA
from tests.support.network import add_member
from tests.support.provisioned import Enrolled, ProvisionedNetwork, hafen, runner
from tests.support.tls import Device, device_identity, make_ca
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def _stored_events(net: ProvisionedNetwork, device: str) -> list:
    with net.engine.connect() as conn:
        return list(conn.execute(select(db.events).where(db.events.c.device == device)))


def test_two_devices_enrol_and_work_over_tls(provisioned):
    net = provisioned
    net.add_site("leipzig-ost")
    one = net.enrol("leipzig-ost", "door-1")
    two = net.enrol("leipzig-ost", "door-2")
    assert wait_for(lambda: one.connected and two.connected, 15)
    # What enrolment wrote: owner-only, the config complete and over TLS.
    etc = one.config.mqtt.ca_file.parent.parent
    for path in etc.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path
    assert one.config.mqtt.port == net.broker.port and one.config.mqtt.cert_file is not None
    # A member's card: the hub's list reaches both doors, a tap's event reaches the hub.
    add_member(net.engine, "anna", ANNA)
    net.publisher.publish_site("leipzig-ost")
    assert wait_for(lambda: one.agent.acl_updater.version >= 1, 10)
    assert one.card.present(ANNA) is not None
    assert wait_for(lambda: len(_stored_events(net, "door-1")) >= 1, 15)
    assert _stored_events(net, "door-1")[0].data["allowed"] is True
    # The fleet shows each door's certificate and whether it should have been renewed.
    nadia = Principal(user_id=1, username="nadia", role=Role.NETWORK_ADMIN, sites=frozenset())
    rows = {row.device: row for row in fleet_rows(net.engine, nadia)}
    until = rows["door-1"].certificate_until
    assert until is not None and timedelta(days=89) < until - datetime.now(UTC) <= timedelta(
        days=90
    )
    assert not rows["door-1"].certificate_overdue and rows["door-1"].enrolled_at is not None
    with net.engine.begin() as conn:
        soon = datetime.now(UTC) + timedelta(days=5)
        conn.execute(
            update(db.device_certificates)
            .where(db.device_certificates.c.device == "door-2")
            .values(not_after=soon)
        )
    assert {row.device: row for row in fleet_rows(net.engine, nadia)}["door-2"].certificate_overdue


def test_a_token_works_once_and_only_before_it_expires(provisioned_on_each_store, tmp_path):
    net = provisioned_on_each_store
    net.add_site("leipzig-ost")
    token = net.token_for("leipzig-ost", "door-1")
    net.enrol("leipzig-ost", "door-1", token)
    used = runner.invoke(
        app,
        ["provision", "enrol", net.url, token, "--etc", str(tmp_path / "again"),
         "--state-dir", str(tmp_path / "again-state")],
    )  # fmt: skip
    assert used.exit_code == 1 and "was used" in used.output
    assert not (tmp_path / "again").exists()
    # Expired: made two hours ago with an hour to live.
    technician = Principal(user_id=1, username="tom", role=Role.TECHNICIAN, sites=frozenset())
    old = enrolment.start(
        net.engine, technician, "leipzig-ost", "door-2",
        now=datetime.now(UTC) - timedelta(hours=2),
    )  # fmt: skip
    for token, why in ((old.token, "expired"), ("x" * 43, "not an enrolment token")):
        result = runner.invoke(
            app,
            ["provision", "enrol", net.url, token, "--etc", str(tmp_path / "no"),
             "--state-dir", str(tmp_path / "no-state")],
        )  # fmt: skip
        assert result.exit_code == 1 and why in result.output, result.output
    assert not (tmp_path / "no").exists()
    # Nothing was made at the broker for the device whose token expired.
    with net.authority.rights() as rights:
        answer = rights.ask({"command": "getClient", "username": "leipzig-ost.door-2"})
        assert "not found" in answer.get("error", "").lower(), answer
        assert "error" not in rights.ask({"command": "getClient", "username": "leipzig-ost.door-1"})


def _identity(device: Enrolled) -> tuple[Path, Path]:
    mqtt = device.config.mqtt
    assert mqtt is not None and mqtt.cert_file is not None and mqtt.key_file is not None
    return mqtt.cert_file, mqtt.key_file


def _password(device: Enrolled) -> str:
    mqtt = device.config.mqtt
    assert mqtt is not None
    password = mqtt.password_value()
    assert password is not None
    return password


def test_a_revoked_device_is_cut_off_and_stays_off_while_the_other_keeps_working(provisioned):
    net = provisioned
    net.add_site("leipzig-ost")
    one = net.enrol("leipzig-ost", "door-1")
    two = net.enrol("leipzig-ost", "door-2")
    add_member(net.engine, "anna", ANNA)
    net.publisher.publish_site("leipzig-ost")
    assert wait_for(lambda: one.connected and two.connected, 15)
    assert wait_for(lambda: two.agent.acl_updater.version >= 1, 10)

    revoked = hafen("provision", "device", "revoke", "leipzig-ost", "door-1", "-c", str(net.config))
    assert "connection dropped" in revoked
    assert wait_for(lambda: not one.connected, 5)
    time.sleep(3)  # the door keeps trying, with its certificate and its old password
    assert not one.connected
    # Its certificate is on the CA's revocation list...
    crl = x509.load_pem_x509_crl(net.files.crl.read_bytes())
    cert = x509.load_pem_x509_certificate(_identity(one)[0].read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    # ... which holds even if the broker had kept its client: given back its client, the
    # device is still refused once the broker has reloaded the list.
    with net.authority.rights() as rights:
        rights.replace(device_rights("leipzig-ost", "door-1", _password(one)))
    net.broker.reload()
    time.sleep(0.5)
    copy = Device(net.broker.port, net.files, _identity(one), one.name, (one.name, _password(one)))
    copy.close()
    assert copy.answered.is_set() and not copy.connected.is_set()
    # The other door works on.
    assert two.connected
    assert two.card.present(ANNA) is not None
    assert wait_for(lambda: len(_stored_events(net, "door-2")) >= 1, 15)


def test_the_broker_holds_every_device_to_its_own_topics_and_id(provisioned, tmp_path):
    net = provisioned
    for site in ("leipzig-ost", "borna"):
        net.add_site(site)
    one = net.enrol("leipzig-ost", "door-1")
    two = net.enrol("leipzig-ost", "door-2")
    elsewhere = net.enrol("borna", "door-1")
    assert wait_for(lambda: one.connected and two.connected and elsewhere.connected, 15)
    port, files = net.broker.port, net.files

    # No certificate, or one from another CA: no connection at all.
    for identity in (
        None,
        device_identity(tmp_path, make_ca(tmp_path, "other"), "leipzig-ost", "door-1"),
    ):
        outsider = _client(port, files, identity, one.name, (one.name, _password(one)))
        assert not outsider.connected.is_set()
    # Door 2's identity cannot take door 1's client id; door 1's cannot take another.
    for name, password, client_id in (
        (two.name, _password(two), one.name),
        (one.name, _password(one), "leipzig-ost.door-9"),
    ):
        squatter = Device(port, files, _identity(two if name == two.name else one), client_id,
                          (name, password))  # fmt: skip
        squatter.close()
        assert not squatter.connected.is_set()
    assert one.connected and two.connected  # neither session was taken over

    # Door 1, as itself (its agent stopped), may read and write only its own: the broker
    # refuses another's subscription, and drops the connection of a forbidden publish.
    one.stop()
    net.devices.remove(one)
    login = (one.name, _password(one))
    door = Device(port, files, _identity(one), one.name, login)
    try:
        assert door.connected.is_set()
        others = protocol.acl_topic("borna"), protocol.own_commands("leipzig-ost", "door-2")
        for topic in ("#", *others):
            assert door.subscribe(topic).value >= 0x80, topic
        assert door.subscribe(protocol.own_commands("leipzig-ost", "door-1")).value < 0x80
        # Under its own prefix it publishes and stays (the control for the drops below).
        reply = protocol.reply_topic("leipzig-ost", "door-1", "probe")
        door.client.publish(reply, b"{}", qos=1).wait_for_publish(5)
        time.sleep(0.3)
        assert door.client.is_connected()
    finally:
        door.close()
    before = two.agent.acl_updater.version
    forged = {
        protocol.event_topic("leipzig-ost", "door-2", "door.exit"): b"{}",
        protocol.event_topic("borna", "door-1", "door.exit"): b"{}",
        protocol.state_topic("leipzig-ost", "door-2"): b'{"online": false}',
        protocol.acl_topic("leipzig-ost"): b"an older list",
        protocol.command_topic("leipzig-ost", "door-2", "unlock"): b"{}",
    }
    for topic, payload in forged.items():
        door = Device(port, files, _identity(one), one.name, login)
        try:
            assert door.connected.is_set()
            door.client.publish(topic, payload, qos=1)
            assert wait_for(lambda d=door: not d.client.is_connected(), 5), topic
        finally:
            door.close()
    time.sleep(0.5)
    with net.engine.connect() as conn:
        letters = conn.execute(select(db.dead_letters)).all()
        assert not letters, [(r.topic, r.reason) for r in letters]
    assert not _stored_events(net, "door-2")
    assert two.connected and two.agent.acl_updater.version == before


def _client(port, files, identity, client_id, password) -> Device | _Refused:
    """A client with ``identity`` (None: no certificate at all; the TLS handshake fails)."""
    if identity is not None:
        device = Device(port, files, identity, client_id, password)
        device.close()
        return device
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(files.ca_cert), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.username_pw_set(*password)
    refused = _Refused()
    client.on_connect = lambda *_: refused.connected.set()
    try:
        client.connect("localhost", port)
        client.loop_start()
        time.sleep(1.0)
    except (OSError, ssl.SSLError):
        pass
    finally:
        client.loop_stop()
    return refused


class _Refused:
    def __init__(self) -> None:
        self.connected = threading.Event()


def test_tokens_read_as_arguments_whatever_they_hold():
    """A token is never taken for an option (one starting with "-" once was)."""
    tokens = {enrolment.new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(len(t) == 52 and t.isalnum() and t == t.lower() for t in tokens)


def test_one_token_redeemed_at_once_from_many_places_enrols_one(provisioned_on_each_store):
    """Eight requests with the same token at the same moment: one certificate, seven refusals,
    one client at the broker."""
    net = provisioned_on_each_store
    net.add_site("leipzig-ost")
    token = net.token_for("leipzig-ost", "door-1")
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(8)]
    start = threading.Barrier(len(keys))
    outcomes: list[str] = []

    def redeem(key: ec.EllipticCurvePrivateKey) -> None:
        request = EnrolmentRequest(token=token, csr=request_for(key))
        start.wait()
        try:
            ask_hub(net.url, request)
            outcomes.append("enrolled")
        except EnrolmentFailed as refused:
            outcomes.append(str(refused))

    threads = [threading.Thread(target=redeem, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("enrolled") == 1, outcomes
    assert all("used" in o and "(HTTP 403)" in o for o in outcomes if o != "enrolled"), outcomes
    with net.engine.connect() as conn:
        certificates = conn.execute(select(db.device_certificates)).all()
    assert len(certificates) == 1 and certificates[0].revoked_at is None
