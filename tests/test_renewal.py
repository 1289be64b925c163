"""Certificate renewal end to end (issue 14): a door renews its own certificate over its MQTT
link, at a real broker over TLS, and the hub gives certificates only to whom and as often as it
should."""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update

from hafen import protocol
from hafen.protocol import RenewalRequest
from hub import db
from hub.auth import Principal, Role
from hub.broker_rights import BrokerRights
from hub.device_identity import write_revocation_list
from hub.services import revocation
from tests.support.edge import ANNA
from tests.support.network import add_member
from tests.support.provisioned import Enrolled, ProvisionedNetwork
from tests.support.tls import request_for
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

#: A certificate this short-lived has less than a third of its life left as it is issued (it
#: starts 5 minutes back, hub.pki.BACKDATE): the door renews it at once.
SHORT = timedelta(minutes=2)
#: A card nobody holds at the network: the door refuses it, and records that.
STRANGER = bytes.fromhex("04B0B1B2B3B4B5")


def _certificates(net: ProvisionedNetwork, device: str) -> list:
    c = db.device_certificates.c
    with net.engine.connect() as conn:
        return list(
            conn.execute(
                select(db.device_certificates).where(c.device == device).order_by(c.issued_at)
            )
        )


def _events(net: ProvisionedNetwork, device: str) -> list:
    e = db.events.c
    with net.engine.connect() as conn:
        return list(conn.execute(select(db.events).where(e.device == device).order_by(e.seq)))


def _on_disk(door: Enrolled) -> x509.Certificate:
    mqtt = door.config.mqtt
    assert mqtt is not None and mqtt.cert_file is not None
    return x509.load_pem_x509_certificate(mqtt.cert_file.read_bytes())


class Tapping:
    """Two people tapping their cards at a door in turn (a member and a stranger), until told
    to stop: each tap is a decision the door records."""

    def __init__(self, door: Enrolled) -> None:
        self.door = door
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for card in (ANNA, STRANGER):
                self.door.card.present(card, timeout=2.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_a_door_renews_its_certificate_without_a_technician_and_loses_no_event(tmp_path):
    net = ProvisionedNetwork(tmp_path, device_lifetime=SHORT)
    try:
        net.add_site("leipzig-ost")
        add_member(net.engine, "anna", ANNA)
        door = net.enrol("leipzig-ost", "door-1")
        tapping = Tapping(door)
        agent = door.agent
        assert agent.renewal is not None and agent.link is not None
        first = _certificates(net, "door-1")[0]

        # The door asks, the hub issues, the door installs the pair and connects with it.
        assert wait_for(lambda: agent.renewal.renewed == 1, 20), net.renewals.counts
        assert wait_for(lambda: door.connected, 10)
        rows = _certificates(net, "door-1")
        assert len(rows) == 2 and all(r.revoked_at is None for r in rows)  # the old one expires
        installed = _on_disk(door)
        assert str(installed.serial_number) == rows[1].serial != first.serial
        assert installed.not_valid_after_utc > datetime.now(UTC)
        mqtt = door.config.mqtt
        assert mqtt is not None and mqtt.key_file is not None
        assert mqtt.key_file.stat().st_mode & 0o077 == 0
        # The broker knows the door by the new certificate: with the old one on the revocation
        # list and the broker started again, the door is back at once.
        with net.engine.begin() as conn:
            c = db.device_certificates.c
            conn.execute(
                update(db.device_certificates)
                .where(c.serial == first.serial)
                .values(revoked_at=datetime.now(UTC))
            )
        assert write_revocation_list(net.engine, net.files) == 1
        net.broker.stop()
        net.broker.start()
        assert wait_for(lambda: door.connected, 15), net.broker.log()[-2000:]

        # The hub heard which certificate the door uses now, and every tap, once.
        tapping.stop()
        time.sleep(0.5)  # the last tap read is decided
        decisions = agent.decisions
        assert decisions >= 10
        last = door.store.last_seq()
        assert wait_for(lambda: len(_events(net, "door-1")) == last, 20)
        events = _events(net, "door-1")
        assert [e.seq for e in events] == list(range(1, last + 1))
        kinds = [e.kind for e in events]
        assert kinds.count(protocol.EventKind.ACCESS_DECISION) == decisions
        renewed = [e.data for e in events if e.kind == protocol.EventKind.CERTIFICATE_RENEWED]
        assert renewed[0]["serial"] == f"{installed.serial_number:x}"[:16]
        with net.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(db.dead_letters)) == 0
        # The renewed certificate is short-lived as well: the door asked again at once and
        # was told to wait (one renewal per device per hour).
        assert len(_certificates(net, "door-1")) == 2
    finally:
        net.close()


def _request(key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    return protocol.encode_json(RenewalRequest(csr=request_for(key, "anything").decode()))


TECHNICIAN = Principal(user_id=1, username="tom", role=Role.TECHNICIAN, sites=frozenset())


def _unreachable() -> AbstractContextManager[BrokerRights]:
    raise OSError("the broker is not reachable")


def test_a_revoked_door_gets_no_certificate(tmp_path, caplog):
    net = ProvisionedNetwork(tmp_path)
    try:
        net.add_site("leipzig-ost")
        door = net.enrol("leipzig-ost", "door-1")
        assert wait_for(lambda: door.connected, 15)
        before = len(_certificates(net, "door-1"))
        # Revoked at the hub while the broker cannot be told (it keeps the door's client, and
        # has not reloaded the revocation list): the door's own request still reaches the hub.
        revoked = revocation.revoke(
            net.engine, dataclasses.replace(net.authority, rights=_unreachable), TECHNICIAN,
            "leipzig-ost", "door-1",
        )  # fmt: skip
        assert not revoked.broker_done and door.connected
        assert door.agent.link is not None
        door.agent.link.ask_for_certificate(_request())
        assert wait_for(lambda: net.renewals.counts["refused"] == 1, 10), net.renewals.counts
        assert "door-1: renewal request refused: the device is revoked" in caplog.text
        assert len(_certificates(net, "door-1")) == before
        assert net.renewals.counts["issued"] == 0
    finally:
        net.close()


def test_garbage_and_floods_from_a_door_cost_little_and_issue_at_most_one(tmp_path):
    from hub.services.renewal_desk import MAX_REQUEST_BYTES, RenewalLimits

    limits = RenewalLimits(look_every=0.2)
    net = ProvisionedNetwork(tmp_path, renewal_limits=limits)
    try:
        net.add_site("leipzig-ost")
        door = net.enrol("leipzig-ost", "door-1")
        assert wait_for(lambda: door.connected, 15)
        link = door.agent.link
        assert link is not None
        counts = net.renewals.counts
        # Too large: dropped unread. Not JSON, not a request, a request signed by another key:
        # each refused, and nothing issued.
        link.ask_for_certificate(b"x" * (MAX_REQUEST_BYTES + 1))
        other_curve = request_for(ec.generate_private_key(ec.SECP384R1()), "x")
        for garbage in (
            b"not json",
            b'{"schema":1,"csr":"----- nothing"}',
            _json(other_curve),
            _json(_badly_signed()),
        ):
            link.ask_for_certificate(garbage)
            time.sleep(limits.look_every + 0.1)
        assert wait_for(lambda: counts["refused"] == 4, 5), counts
        assert counts["dropped"] == 1 and counts["issued"] == 0
        assert len(_certificates(net, "door-1")) == 1

        # A flood of sound requests for a second and a half: most are dropped on arrival, a
        # few looked at, and only the first of those gets a certificate (once an hour).
        requests = [_request() for _ in range(300)]
        started = time.monotonic()
        for request in requests:
            link.ask_for_certificate(request)
            time.sleep(0.005)
        flood_seconds = time.monotonic() - started
        assert wait_for(lambda: counts["received"] >= 305, 10), counts
        looked_at = 300 - (counts["dropped"] - 1)  # dropped on arrival, or by a newer one
        assert 2 <= looked_at <= 2 + flood_seconds / limits.look_every, counts
        # The desk's bucket (10 at once, then 1/s) lets the last of them wait a moment.
        answered = lambda: counts["refused"] + counts["issued"] == 4 + looked_at  # noqa: E731
        assert wait_for(answered, 10), counts
        assert counts["issued"] == 1, counts  # the window said no to the rest
        assert len(_certificates(net, "door-1")) == 2
        # The door had asked for none of them: it installs nothing.
        assert door.agent.renewal is not None and door.agent.renewal.renewed == 0
        assert door.connected
    finally:
        net.close()


def _badly_signed() -> bytes:
    """A request whose signature does not verify (its last byte changed)."""
    request = x509.load_pem_x509_csr(request_for(ec.generate_private_key(ec.SECP256R1()), "x"))
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    body = base64.encodebytes(bytes(der)).decode()
    pem = f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    return pem.encode()


def _json(csr: bytes) -> bytes:
    return protocol.encode_json(RenewalRequest(csr=csr.decode()))
