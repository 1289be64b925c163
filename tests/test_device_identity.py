"""Enrolment again, revocation, and the revocation list, on a network set up through the shipped
commands (tests/support/provisioned.py), with the hub's store on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from edge.agent.enrolment import request_for
from hub import db
from hub.auth import Principal, Role
from hub.broker_rights import BrokerRights
from hub.device_identity import RevocationListKeeper
from hub.services import enrolment, revocation
from hub.services.errors import Unavailable
from tests.support.provisioned import Enrolled, ProvisionedNetwork, hafen
from tests.support.tls import Device
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
TIM = Principal(user_id=1, username="tim", role=Role.TECHNICIAN, sites=frozenset())


@pytest.fixture
def net(provisioned_on_each_store: ProvisionedNetwork) -> ProvisionedNetwork:
    provisioned_on_each_store.add_site("leipzig-ost")
    return provisioned_on_each_store


def _unreachable() -> AbstractContextManager[BrokerRights]:
    raise OSError("the broker is not reachable")


def _serial(device: Enrolled) -> int:
    assert device.config.mqtt is not None and device.config.mqtt.cert_file is not None
    return x509.load_pem_x509_certificate(device.config.mqtt.cert_file.read_bytes()).serial_number


def _listed(net: ProvisionedNetwork) -> set[int]:
    crl = x509.load_pem_x509_crl(net.files.crl.read_bytes())
    return {entry.serial_number for entry in crl}


def test_enrolling_again_ends_the_old_identity(net, tmp_path):
    old = net.enrol("leipzig-ost", "door-1")
    assert wait_for(lambda: old.connected, 15)
    old_serial = _serial(old)
    mqtt = old.config.mqtt
    assert mqtt is not None and mqtt.cert_file is not None and mqtt.key_file is not None
    kept = tmp_path / "old-pi"  # the old Pi's identity, as whoever took it keeps it
    kept.mkdir()
    (kept / "cert").write_bytes(mqtt.cert_file.read_bytes())
    (kept / "key").write_bytes(mqtt.key_file.read_bytes())
    password = mqtt.password_value() or ""
    old.stop()
    net.devices.remove(old)
    new = net.enrol("leipzig-ost", "door-1")  # a new Pi in its place
    assert wait_for(lambda: new.connected, 15)
    assert old_serial in _listed(net) and _serial(new) not in _listed(net)
    copy = Device(net.broker.port, net.files, (kept / "cert", kept / "key"), old.name,
                  (old.name, password))  # fmt: skip
    copy.close()
    assert copy.answered.is_set() and not copy.connected.is_set()  # its password is no more
    assert new.connected


def test_a_broker_that_is_down_changes_nothing_and_a_second_run_finishes(net):
    token = net.token_for("leipzig-ost", "door-1")
    cut_off = dataclasses.replace(net.authority, rights=_unreachable)
    request = enrolment.EnrolmentRequest(token=token, csr="not yet")
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unavailable, match="token stays valid"):
        enrolment.redeem(net.engine, cut_off, request.model_copy(update={"csr": request_for(key)}))
    with net.engine.connect() as conn:
        assert conn.execute(select(db.device_certificates)).all() == []
    door = net.enrol("leipzig-ost", "door-1", token)  # the same token works now
    assert wait_for(lambda: door.connected, 15)
    first = revocation.revoke(net.engine, cut_off, TIM, "leipzig-ost", "door-1")
    assert not first.broker_done and "not reachable" in (first.broker_error or "")
    assert _serial(door) in _listed(net)  # the list is written whatever the broker does
    assert door.connected  # the broker kept its client
    second = revocation.revoke(net.engine, net.authority, TIM, "leipzig-ost", "door-1")
    assert second.broker_done and second.revoked_at == first.revoked_at
    assert wait_for(lambda: not door.connected, 5)


def test_revoking_ends_the_tokens_made_before(net):
    token = net.token_for("leipzig-ost", "door-1")
    hafen("provision", "device", "revoke", "leipzig-ost", "door-1", "-c", str(net.config))
    with pytest.raises(AssertionError, match="not an enrolment token"):
        net.enrol("leipzig-ost", "door-1", token)


def test_revocations_at_once_all_reach_the_list(net):
    doors = [net.enrol("leipzig-ost", f"door-{n}") for n in range(4)]
    serials = {_serial(door) for door in doors}
    start = threading.Barrier(len(doors))

    def revoke(name: str) -> None:
        start.wait()
        revocation.revoke(net.engine, net.authority, TIM, "leipzig-ost", name)

    threads = [threading.Thread(target=revoke, args=(f"door-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert serials <= _listed(net)


def test_the_list_is_kept_fresh_though_nobody_is_revoked(net):
    stale = net.files.crl.stat().st_mtime
    keeper = RevocationListKeeper(net.engine, net.files, every=timedelta(hours=24)).start()
    try:
        assert wait_for(lambda: net.files.crl.stat().st_mtime > stale, 5)
    finally:
        keeper.stop()
    # Whoever wrote it first, the lock the writers take turns by opens for everyone (read-only).
    assert (net.files.directory / ".ca.crl.lock").stat().st_mode & 0o044 == 0o044
    crl = x509.load_pem_x509_crl(net.files.crl.read_bytes())
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - datetime.now(UTC) > timedelta(days=29)
