"""Edge and hub through a real mosquitto: events stored once, access lists signed and applied."""

from __future__ import annotations

import pytest
from conftest import wait_for
from network_helpers import TestHub, acl_version, connected_edge

from provisioning.broker import LocalBroker

ANNA = bytes.fromhex("04A1B2C3D4E5F6")
BEN = bytes.fromhex("04B2C3D4E5F607")
SITE = "leipzig-ost"


@pytest.fixture
def broker(tmp_path):
    with LocalBroker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def hub(tmp_path, broker):
    hub = TestHub(tmp_path, broker).start()
    hub.add_site(SITE)
    yield hub
    hub.stop()


def test_a_tap_is_stored_at_the_hub_exactly_once(tmp_path, hub, mock_pins):
    hub.add_member("anna", ANNA)
    hub.publisher.publish_site(SITE)
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) == 1, 10)
        assert card.present(ANNA) is not None
        assert wait_for(lambda: len(hub.events()) == 1, 10)
        [event] = hub.events()
        assert (event.site, event.device, event.seq) == (SITE, "door-1", 1)
        assert event.kind == "door.decision"
        assert event.data["allowed"] is True and event.data["member"] == "anna"
        # The hub's acknowledgement lets the edge forget the event.
        assert wait_for(lambda: agent.store.pending_events() == [], 10)
    assert len(hub.events()) == 1
    assert hub.dead_letters() == []


def test_revoking_a_card_at_the_hub_makes_the_edge_deny_it(tmp_path, hub, mock_pins):
    anna = hub.add_member("anna", ANNA)
    hub.add_member("ben", BEN)
    hub.publisher.publish_site(SITE)
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) == 1, 10)
        [published] = hub.publisher.revoke_card(anna)
        assert published.kind == "delta" and published.version == 2
        assert wait_for(lambda: acl_version(agent) == 2, 10)
        card.present(ANNA)
        card.present(BEN)
        assert wait_for(lambda: len(hub.events()) == 2, 10)
        decisions = {e.data["member"]: e.data for e in hub.events()}
        assert decisions["anna"]["allowed"] is False and decisions["anna"]["reason"] == "revoked"
        assert decisions["ben"]["allowed"] is True
