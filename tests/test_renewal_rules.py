"""The hub's rules for renewal on each database it supports: who gets a certificate, how
often, what the fleet is told; and the desk's answer, as a door would check it."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select, update

from edge.agent.remote import CommandVerifier
from hafen import protocol
from hafen.protocol import RenewalRequest
from hafen.signing import public_key_from_text, public_key_text
from hub import db
from hub.broker_rights import BrokerRights
from hub.device_identity import DeviceAuthority
from hub.keys import generate_key
from hub.services import renewal
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from hub.services.renewal_desk import RenewalDesk, RenewalLimits
from tests.support.tls import make_ca, request_for
from tests.support.waiting import wait_for

#: The desk works on the clock: the store's times are around it.
NOW = datetime.now(UTC).replace(microsecond=0)


def _no_broker() -> AbstractContextManager[BrokerRights]:
    raise OSError("renewal never needs the broker's admin")


@pytest.fixture
def hub(engine, tmp_path):
    """A store with one site, a door enrolled a minute ago and one registered but never
    enrolled, and the CA that enrolled it."""
    files = make_ca(tmp_path)
    authority = DeviceAuthority(files, _no_broker, "localhost", 8883, ("-",), b"k" * 32)
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id="leipzig-ost", timezone="Europe/Berlin"))
        enrolled = NOW - timedelta(minutes=1)
        for device, at in (("door-1", enrolled), ("door-2", None)):
            conn.execute(
                insert(db.devices).values(
                    site="leipzig-ost", id=device, created_at=enrolled, enrolled_at=at
                )
            )
        conn.execute(
            insert(db.device_certificates).values(
                serial="1", site="leipzig-ost", device="door-1", issued_at=enrolled,
                not_after=enrolled + timedelta(days=90),
            )
        )  # fmt: skip
    return engine, authority


def _csr() -> bytes:
    return request_for(ec.generate_private_key(ec.SECP256R1()), "anything")


def _count(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(db.device_certificates)).all())


def test_an_enrolled_door_renews_once_per_window(hub):
    engine, authority = hub
    # The enrolment a minute ago does not count: the door may renew at once ...
    cert = renewal.renew(engine, authority, "leipzig-ost", "door-1", _csr(), now=NOW)
    assert cert.not_valid_after_utc == NOW + timedelta(days=90)
    # ... but only once an hour, however it asks.
    for later in (timedelta(seconds=1), timedelta(minutes=59)):
        with pytest.raises(Conflict):
            renewal.renew(engine, authority, "leipzig-ost", "door-1", _csr(), now=NOW + later)
    renewal.renew(engine, authority, "leipzig-ost", "door-1", _csr(), now=NOW + timedelta(hours=1))
    assert _count(engine) == 3
    # The fleet sees when each device's newest certificate ends.
    with engine.connect() as conn:
        ends = renewal.certificate_expiry(conn)
        narrowed = renewal.certificate_expiry(conn, sites={"borna"})
    assert ends == {("leipzig-ost", "door-1"): NOW + timedelta(hours=1, days=90)}
    assert narrowed == {}


def test_no_certificate_for_a_stranger_a_door_never_enrolled_a_revoked_one_or_a_bad_request(
    hub,
):
    engine, authority = hub
    with pytest.raises(NotFound):
        renewal.renew(engine, authority, "leipzig-ost", "door-9", _csr(), now=NOW)
    with pytest.raises(Forbidden, match="not enrolled"):
        renewal.renew(engine, authority, "leipzig-ost", "door-2", _csr(), now=NOW)
    with pytest.raises(Invalid, match="not a PEM"):
        renewal.renew(engine, authority, "leipzig-ost", "door-1", b"garbage", now=NOW)
    with engine.begin() as conn:
        conn.execute(update(db.devices).where(db.devices.c.id == "door-1").values(revoked_at=NOW))
    with pytest.raises(Forbidden, match="revoked"):
        renewal.renew(engine, authority, "leipzig-ost", "door-1", _csr(), now=NOW)
    assert _count(engine) == 1


def test_the_desk_answers_with_a_command_the_door_accepts_and_repeats_it_for_the_same_key(
    hub, tmp_path
):
    engine, authority = hub
    key = generate_key(tmp_path / "signing.pem")
    sent: list[tuple[str, bytes]] = []
    desk = RenewalDesk(
        engine, authority, key, lambda t, p: sent.append((t, p)), RenewalLimits(look_every=0.05)
    ).start()
    try:
        topic = protocol.renewal_topic("leipzig-ost", "door-1")
        request = protocol.encode_json(RenewalRequest(csr=_csr().decode()))
        desk.submit(topic, request)
        assert wait_for(lambda: len(sent) == 1, 5), desk.counts
        # The answer went unheard; the door asks again for the same key.
        assert desk.counts["issued"] == 1
        time.sleep(0.1)  # a device's requests are looked at once per look_every
        desk.submit(topic, request)
        assert wait_for(lambda: len(sent) == 2, 5), desk.counts
        assert desk.counts["resent"] == 1 and _count(engine) == 2
        # Revoked since: the same question gets nothing, not even the certificate it had.
        with engine.begin() as conn:
            revoked = update(db.devices).where(db.devices.c.id == "door-1")
            conn.execute(revoked.values(revoked_at=datetime.now(UTC)))
        time.sleep(0.1)
        desk.submit(topic, request)
        assert wait_for(lambda: desk.counts["refused"] == 1, 5), desk.counts
        assert len(sent) == 2 and desk.counts["resent"] == 1
    finally:
        desk.stop()
    door = CommandVerifier(
        "leipzig-ost", "door-1", [public_key_from_text(public_key_text(key))], None
    )
    pems = []
    for command_topic, payload in sent:
        assert command_topic == protocol.command_topic("leipzig-ost", "door-1", "certificate")
        command = door.verify("certificate", payload, datetime.now(UTC))
        pems.append(command.args["certificate"])
    assert pems[0] == pems[1] and "BEGIN CERTIFICATE" in pems[0]
