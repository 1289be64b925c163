"""The hub keeps only a door's own states, in the order the door lives them (issue 13: a forged
state with an absurd session pinned a real door "offline"; states for made-up doors made the
hub send snapshots). On a real mosquitto, SQLite and PostgreSQL, with real doors where a door
matters."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import select

from hafen import protocol
from hafen.protocol import DeviceState, encode_json
from hub import db
from hub.ingest.states import MAX_SESSION_JUMP, Stored, Verdict, judge
from tests.support.intruder import MARKER, Intruder, Snapshots, sealed
from tests.support.network import TestHub, connected_edge
from tests.support.waiting import wait_for

SITE = "leipzig-ost"
EPOCH, OTHER = "00000000000000aa", "00000000000000bb"


@pytest.fixture
def hub(tmp_path, broker, hub_url):
    hub = TestHub(tmp_path, broker, url=hub_url).start()
    hub.add_device(SITE, "door-1")
    hub.add_device(SITE, MARKER)
    hub.publisher.publish_site(SITE)
    yield hub
    hub.stop()


def state_row(hub: TestHub, device: str = "door-1"):
    with hub.engine.connect() as conn:
        s = db.device_states.c
        return conn.execute(
            select(db.device_states).where(s.site == SITE, s.device == device)
        ).one_or_none()


def states_handled(hub: TestHub, intruder: Intruder) -> None:
    """A genuine state of the marker door after the rest; wait until it is kept."""
    session = int(time.monotonic() * 1000)
    marker = sealed(SITE, MARKER, online=True, session=session, acl_version=1)  # up to date
    intruder.state(SITE, MARKER, marker)
    assert wait_for(lambda: (r := state_row(hub, MARKER)) and r.session == session, 10)


def test_a_state_with_an_absurd_session_never_pins_a_restarted_door_offline(
    tmp_path, hub, intruder, mock_pins
):
    with connected_edge(tmp_path, hub) as (agent, _):
        assert wait_for(lambda: (r := state_row(hub)) is not None and r.online, 10)
        real = agent.link.session
        # Forged: no proof at all; and one sealed with the card key but jumping 2**62.
        intruder.state(SITE, "door-1", DeviceState(online=False, session=2**62))
        jump = sealed(SITE, "door-1", online=False, session=real + 2**62, epoch=agent.store.epoch)
        intruder.state(SITE, "door-1", jump)
        assert wait_for(lambda: state_row(hub).refused_states == 2, 10)
        row = state_row(hub)
        assert row.online is True and row.session == real and row.refused_at is not None
    assert wait_for(lambda: state_row(hub).online is False, 10)  # its own goodbye counts
    with connected_edge(tmp_path, hub) as (agent, _):  # restarted: a new boot, a new session
        assert wait_for(lambda: state_row(hub).online is True, 10)
        assert state_row(hub).session == agent.link.session > real
    assert state_row(hub).refused_states == 2


def test_states_for_made_up_doors_are_stored_nowhere_and_send_no_snapshot(hub, intruder):
    snapshots = Snapshots(hub.broker.port)
    for i in range(20):  # even with the door's proof: the door is not registered
        ghost = f"ghost-{i}"
        intruder.state(SITE, ghost, sealed(SITE, ghost, online=True, session=1, acl_version=0))
    intruder.state("nowhere", "door-1", sealed("nowhere", "door-1", online=True, session=1))
    states_handled(hub, intruder)
    time.sleep(3.5)  # past the catch-up's second look
    assert snapshots.count() == 0
    with hub.engine.connect() as conn:
        devices = set(conn.scalars(select(db.device_states.c.device)))
    assert devices == {MARKER}
    reasons = sorted({r.reason for r in hub.dead_letters()})
    assert reasons == ["state: unknown site", "state: unregistered device"]
    snapshots.close()


def test_a_forged_state_for_a_registered_door_is_only_counted(hub, intruder):
    snapshots = Snapshots(hub.broker.port)
    forged = DeviceState(online=True, session=5, acl_version=0)
    wrong_key = sealed(SITE, "door-1", key=b"k" * 16, online=True, session=6, acl_version=0)
    for state in (forged, wrong_key):
        intruder.state(SITE, "door-1", state)
    states_handled(hub, intruder)
    row = state_row(hub)
    assert (row.online, row.session, row.received_at) == (None, None, None)
    assert row.refused_states == 2 and row.refused_at is not None
    from hub.auth import Principal, Role
    from hub.services.fleet import fleet_rows

    nadia = Principal(user_id=1, username="nadia", role=Role.NETWORK_ADMIN, sites=frozenset())
    [door] = [r for r in fleet_rows(hub.engine, nadia) if r.device == "door-1"]
    assert door.online is None and door.refused_states == 2 and door.warnings >= 1
    time.sleep(3.5)
    assert snapshots.count() == 0
    snapshots.close()


def test_a_will_keeps_the_list_versions_and_another_store_starts_afresh(hub, intruder):
    def say(**fields) -> None:
        intruder.state(SITE, "door-1", sealed(SITE, "door-1", **fields))
        states_handled(hub, intruder)

    say(online=True, session=3_000_001, epoch=EPOCH, acl_version=1, seen_version=1)
    say(online=False, session=3_000_001, epoch=EPOCH)  # the will: no versions
    row = state_row(hub)
    assert (row.online, row.acl_version, row.seen_version) == (False, 1, 1)
    say(online=True, session=3_000_001, epoch=EPOCH, acl_version=1)  # a replayed birth
    assert state_row(hub).online is False
    say(online=False, session=9_000_001, epoch=OTHER)  # a will of another store: ignored
    assert (state_row(hub).session, state_row(hub).epoch) == (3_000_001, EPOCH)
    say(online=True, session=1_000_001, epoch=OTHER, acl_version=0, takeovers=2)
    row = state_row(hub)
    assert (row.online, row.session, row.epoch, row.acl_version) == (True, 1_000_001, OTHER, 0)
    assert row.takeovers == 2 and row.refused_states == 0


def test_a_replayed_birth_of_a_store_the_door_has_left_changes_nothing(hub, intruder):
    """Anyone can keep a door's retained birth; after its store was recovered (a new epoch,
    no list yet) that old birth said "online on version 7" and the hub believed it."""

    def say(**fields) -> None:
        intruder.state(SITE, "door-1", sealed(SITE, "door-1", **fields))
        states_handled(hub, intruder)

    say(online=True, session=3_000_001, epoch=EPOCH, acl_version=7)  # kept by the attacker
    say(online=True, session=1_000_001, epoch=OTHER, acl_version=0)  # the recovered store
    say(online=True, session=3_000_001, epoch=EPOCH, acl_version=7)  # the replay
    row = state_row(hub)
    assert (row.epoch, row.acl_version, row.left_epochs) == (OTHER, 0, [EPOCH])
    say(online=False, session=1_000_002, epoch=OTHER)  # the recovered store's own will
    assert (state_row(hub).online, state_row(hub).epoch) == (False, OTHER)


def test_without_the_card_key_every_state_is_refused(tmp_path, broker, hub_url, caplog):
    with caplog.at_level(logging.WARNING, logger="hub.ingest.worker"):
        hub = TestHub(tmp_path, broker, url=hub_url, card_key=None).start()
    assert any("no card key" in r.getMessage() for r in caplog.records)
    try:
        hub.add_device(SITE, "door-1")
        intruder = Intruder(broker.port)
        intruder.state(SITE, "door-1", sealed(SITE, "door-1", online=True, session=1))
        assert wait_for(lambda: (r := state_row(hub)) is not None and r.refused_states == 1, 10)
        assert state_row(hub).online is None
        intruder.close()
    finally:
        hub.stop()


@pytest.mark.parametrize(
    ("stored", "fields", "verdict"),
    [
        (None, {"session": 2**62}, Verdict.KEEP),  # nothing to compare with
        (Stored(None, None, None), {"session": 7}, Verdict.KEEP),  # only refusals so far
        (Stored(True, 5, EPOCH), {"session": 4}, Verdict.IGNORE),  # a late will
        (Stored(True, 5, EPOCH), {"session": 5, "online": False}, Verdict.KEEP),
        (Stored(False, 5, EPOCH), {"session": 5}, Verdict.IGNORE),  # birth after its end
        (Stored(True, 5, EPOCH), {"session": 5 + MAX_SESSION_JUMP}, Verdict.KEEP),
        (Stored(True, 5, EPOCH), {"session": 6 + MAX_SESSION_JUMP}, Verdict.REFUSE),
        (Stored(True, 5, None), {"session": 2**62}, Verdict.REFUSE),  # epoch unknown: same
        (Stored(True, 5, EPOCH), {"session": 1, "epoch": OTHER}, Verdict.KEEP),
        (Stored(True, 5, EPOCH), {"session": 9, "epoch": OTHER, "online": False}, Verdict.IGNORE),
        (Stored(True, 1, OTHER, left_epochs=(EPOCH,)), {"session": 9}, Verdict.IGNORE),  # replay
    ],
)
def test_which_genuine_states_follow_the_stored_one(stored, fields, verdict):
    state = DeviceState(**{"online": True, "epoch": EPOCH, **fields})
    assert judge(stored, state)[0] is verdict


def test_a_flood_of_replayed_states_queues_one_per_door(tmp_path, broker, hub_url, intruder):
    """A door's own retained birth, copied off the broker and published thousands of times:
    each copy is genuine and kept, but the states callback (a store query each) is owed only
    the newest per door, so a flood cannot queue up the worker's memory."""
    from hub.ingest.worker import IngestWorker
    from tests.support.edge import CARD_KEY
    from tests.support.intruder import handled

    calls: list[str] = []
    release = threading.Event()

    def on_state(site: str, device: str, state: DeviceState) -> None:
        calls.append(device)
        release.wait(10)  # a slow callback: a snapshot being sealed, say

    hub = TestHub(tmp_path, broker, url=hub_url, workers=0)
    hub.workers.append(
        IngestWorker(hub.engine, "127.0.0.1", broker.port, hub.key, on_state=on_state,
                     card_key=CARD_KEY)
    )  # fmt: skip
    hub.start()
    try:
        hub.add_device(SITE, "door-1")
        hub.add_device(SITE, MARKER)
        birth = sealed(SITE, "door-1", online=True, session=1, epoch=EPOCH, acl_version=0)
        copies = [(protocol.state_topic(SITE, "door-1"), encode_json(birth))] * 2000
        intruder.publish_many(copies)
        handled(hub, intruder)  # every copy has been through the worker
        assert wait_for(lambda: calls, 5)
        release.set()
        time.sleep(0.5)
        assert 1 <= calls.count("door-1") <= 2  # the one under way and the newest
    finally:
        release.set()
        hub.stop()
