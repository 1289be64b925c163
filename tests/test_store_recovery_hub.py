"""A recovered door and the hub, on a real mosquitto and each hub store: the salvaged events
arrive once each under the place the damaged store gave them, the fault shows in the door's
state, and the hub's catch-up sends the door without a list a snapshot."""

from __future__ import annotations

import pytest

from edge.agent.access_list import applied_version
from edge.agent.store import EdgeStore
from hafen import protocol
from sim.broker import LocalBroker
from tests.support.damage import CARDS, build_store, garble_page, page_holding, zero_header
from tests.support.edge import ANNA
from tests.support.healing import DEVICE, SITE, RecordingHub, healing_door
from tests.support.waiting import wait_for


@pytest.fixture
def hub(tmp_path, hub_url):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = RecordingHub(tmp_path, broker, url=hub_url)
        hub.start()
        hub.register()
        yield hub
        hub.stop()


def test_salvaged_events_reach_the_hub_once_each_at_their_own_place(tmp_path, hub, mock_pins):
    path = tmp_path / "edge.db"
    before = build_store(path, events=60, site=SITE)
    for uid, member in list(CARDS.items())[:60]:  # the hub lets in only members it knows
        hub.add_member(member, uid)
    store = EdgeStore(path)
    early = store.pending_events(limit=10)
    store.close()
    # The hub stored the first ten already; the door never heard back before its store broke.
    for event in early:
        topic = protocol.event_topic(SITE, DEVICE, event.kind)
        hub.client.publish(topic, event.wire(before["epoch"]))
    assert wait_for(lambda: len(hub.events()) == 10, 10)
    # A page of later events is damaged: those are lost, the ones after it are not.
    garble_page(path, page_holding(path, "outbox", before["event_ids"][39]))
    with healing_door(tmp_path, hub) as (agent, _card, recovery):
        assert recovery is not None and 0 < recovery.lost < 50
        assert wait_for(lambda: not agent.store.salvaged_epochs(), 15), "not acknowledged"
        old = [e for e in hub.events() if e.epoch == before["epoch"]]
        assert [e.seq for e in old] == list(range(1, 61))  # each place once: none twice
        lost = 0
        for event in old:
            if event.event_id in before["event_ids"]:
                assert before["event_ids"][event.seq - 1] == event.event_id
            else:  # a stand-in where an event could not be read
                lost += 1
                assert event.kind == "device.fault" and "lost" in event.data["fault"]
        assert lost == recovery.lost
        assert {e.seq for e in old[:10]} == set(range(1, 11))
        assert hub.dead_letters() == []
        # The fresh store's own first event reports the recovery.
        assert wait_for(lambda: fresh_faults(hub, agent.store.epoch), 10)
        assert (fresh_faults(hub, agent.store.epoch)[0] or "").startswith("recovered")


def fresh_faults(hub: RecordingHub, epoch: str) -> list[str | None]:
    """The ``device.fault`` texts the hub has from the store with ``epoch``, in order."""
    events = hub.events()
    return [e.data.get("fault") for e in events if e.epoch == epoch and e.kind == "device.fault"]


def test_a_recovered_door_reports_it_and_the_hub_sends_it_a_snapshot(tmp_path, hub, mock_pins):
    for i in range(20):
        hub.add_member(f"m{i}", bytes([0x04, 0x61, i, 1, 2, 3, 4]))
    hub.publisher.publish_site(SITE)
    anna = hub.add_member("anna", ANNA)
    published = hub.publisher.publish_site(SITE)
    assert published is not None and published.kind == "delta"  # the retained list: a delta
    build_store(tmp_path / "edge.db", events=3, site=SITE)
    zero_header(tmp_path / "edge.db")
    with healing_door(tmp_path, hub) as (agent, card, recovery):
        assert recovery is not None
        # The state says what happened and that the door has no list (version 0)...
        assert wait_for(lambda: (hub.store_fault() or "").startswith("recovered"), 10)
        assert any(s.acl_version in (0, None) and s.faults.get("store") for s in hub.states)
        # ... so the hub's catch-up sends the whole list, the delta being of no use to it.
        assert wait_for(lambda: applied_version(agent.store) == 2, 15)
        assert wait_for(lambda: hub.store_fault() is None, 10)
        assert "store" not in agent.faults.current()
        assert card.present(ANNA) is not None
        assert wait_for(lambda: any(e.data.get("card") == anna for e in hub.events()), 10)
        [decision] = [e for e in hub.events() if e.data.get("card") == anna]
        assert decision.data["allowed"] is True and decision.data["member"] == "anna"
        assert wait_for(lambda: fresh_faults(hub, agent.store.epoch)[-1:] == [None], 10)
        assert (fresh_faults(hub, agent.store.epoch)[0] or "").startswith("recovered")
        assert hub.dead_letters() == []
