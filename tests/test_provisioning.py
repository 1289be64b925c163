"""Provisioning end to end (issue 14): a network set up with the shipped commands, devices
enrolled with one-time tokens, everything over TLS at a broker that trusts no one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from hafen.cli import app
from hub import db
from hub.auth import Principal, Role
from hub.services import enrolment
from tests.support.edge import ANNA
from tests.support.network import add_member
from tests.support.provisioned import ProvisionedNetwork, runner
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def network(tmp_path):
    net = ProvisionedNetwork(tmp_path)
    try:
        yield net
    finally:
        net.close()


def _stored_events(net: ProvisionedNetwork, device: str) -> list:
    with net.engine.connect() as conn:
        return list(conn.execute(select(db.events).where(db.events.c.device == device)))


def test_two_devices_enrol_and_work_over_tls(network):
    net = network
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


def test_a_token_works_once_and_only_before_it_expires(network, tmp_path):
    net = network
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
    rights = net.authority.rights()
    try:
        answer = rights.ask({"command": "getClient", "username": "leipzig-ost.door-2"})
        assert "not found" in answer.get("error", "").lower(), answer
        assert "error" not in rights.ask({"command": "getClient", "username": "leipzig-ost.door-1"})
    finally:
        rights.close()
