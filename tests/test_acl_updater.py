"""The door's access-list updater holds whatever reaches it: the newest list of each source,
refusals as a count reported at a bounded rate, nothing oversized read, and a door that missed
a version says it is behind. On a real store, with real signatures."""

from __future__ import annotations

import json
import os
import time
import zlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.access_list import apply_snapshot
from edge.agent.acl_mailbox import Source
from edge.agent.faults import FaultBoard
from edge.agent.remote import MAX_LIST_BYTES, AclUpdater
from edge.agent.store import EdgeStore
from hafen import protocol
from hafen.acl import AccessList, AccessListDelta
from hafen.signing import seal
from tests.support.edge import ANNA, CARD_KEY, outbox, site_acl
from tests.support.waiting import wait_for

SITE = "leipzig-ost"
TZ = ZoneInfo("Europe/Berlin")
HUB = Ed25519PrivateKey.generate()


def sealed(doc: AccessList | AccessListDelta, key: Ed25519PrivateKey = HUB) -> bytes:
    return seal(key, protocol.acl_header(doc, datetime.now(UTC)), protocol.acl_body(doc))


def delta(version: int, base: int, **changes) -> bytes:
    return sealed(AccessListDelta(site=SITE, version=version, base=base, **changes))


def forged(size: int = 64 * 1024) -> bytes:
    """A list signed by a key the door does not trust, padded to ``size`` bytes."""
    doc = AccessList(site=SITE, version=99)
    header = protocol.acl_header(doc, datetime.now(UTC))
    body = protocol.acl_body(doc)
    return seal(Ed25519PrivateKey.generate(), header, body + os.urandom(size - len(body) - 200))


class Updater:
    """An updater on a store holding version 1 of the site's list, counting what it calls."""

    def __init__(self, tmp_path, report_every: float = 300.0) -> None:
        self.store = EdgeStore(tmp_path / "edge.db", "normal")
        apply_snapshot(self.store, site_acl({ANNA: "anna"}), SITE, TZ, CARD_KEY)
        self.changes = 0
        self.faults = FaultBoard()
        self.updater = AclUpdater(
            self.store,
            SITE,
            TZ,
            CARD_KEY,
            [HUB.public_key()],
            on_change=self._changed,
            faults=self.faults,
            report_every=report_every,
        )

    def _changed(self) -> None:
        self.changes += 1

    def refusal_events(self) -> list[dict]:
        return [body for kind, body in outbox(self.store) if kind == "acl.refused"]

    def close(self) -> None:
        self.updater.stop()
        self.store.close()


@pytest.fixture
def door(tmp_path):
    door = Updater(tmp_path)
    yield door
    door.close()


def test_thousands_of_forged_lists_are_counted_not_each_written(tmp_path):
    door = Updater(tmp_path, report_every=2.0)
    updater = door.updater
    try:
        updater.start()
        payload = forged()
        for _ in range(2000):  # faster than the updater verifies them
            updater.submit(payload)
            assert len(updater.mailbox.pending()) <= 2  # never more held than that
        for _ in range(300):  # each one verified and refused
            updater.submit(payload)
            while updater.mailbox.pending():
                time.sleep(0.0005)
        assert wait_for(lambda: updater.refusals.total + updater.mailbox.dropped == 2300, 10)
        refused = updater.refusals.total
        assert refused >= 300
        # The first refusal is reported at once, the rest as one count a little later.
        assert wait_for(lambda: len(door.refusal_events()) == 1, 5)
        first = door.refusal_events()[0]
        assert first["count"] == 1 and "signature" in first["reason"]
        assert wait_for(lambda: len(door.refusal_events()) == 2, 5)
        assert door.refusal_events()[1]["count"] == refused - 1
        assert updater.version == updater.seen_version == 1  # nothing forged counts as seen
        assert door.changes == 0  # nor publishes a state
    finally:
        door.close()


def test_a_newer_list_replaces_the_waiting_one_and_a_snapshot_goes_first(door):
    updater = door.updater
    updater.submit(delta(2, 1, removed_cards=[]))
    updater.submit(delta(3, 2, removed_cards=[]))  # replaces version 2 before it was handled
    snapshot = site_acl({ANNA: "anna"}, version=3)
    updater.submit(sealed(snapshot), Source.SNAPSHOT)
    assert updater.mailbox.dropped == 1
    assert set(updater.mailbox.pending()) == {Source.SNAPSHOT, Source.RETAINED}
    updater.start()
    # The snapshot applies first; the retained delta to the same version is then nothing new.
    assert wait_for(lambda: updater.version == 3 and not updater.mailbox.pending(), 5)
    assert updater.refusals.total == 0 and door.refusal_events() == []
    assert not updater.behind


def test_a_door_that_missed_a_version_says_it_is_behind(door):
    updater = door.updater
    updater.submit(delta(2, 1, removed_cards=[]))
    updater.submit(delta(3, 2, removed_cards=[]))  # version 2 is dropped unseen
    updater.start()
    assert wait_for(lambda: len(door.refusal_events()) == 1, 5)
    [event] = door.refusal_events()
    assert "does not apply to version 1" in event["reason"] and event["version"] == 3
    assert (updater.version, updater.seen_version, updater.behind) == (1, 3, True)
    # It published its state once (asking the hub for a snapshot), not once per refusal.
    assert wait_for(lambda: door.changes == 1, 5)
    updater.submit(delta(4, 3, removed_cards=[]))
    assert wait_for(lambda: updater.refusals.total == 2 and updater.seen_version == 4, 5)
    assert door.changes == 1  # asked again only after a while (30 s, doubling)
    updater.submit(sealed(site_acl({ANNA: "anna"}, version=4)), Source.SNAPSHOT)
    assert wait_for(lambda: updater.version == 4 and not updater.behind, 5)


def test_an_oversized_list_is_refused_before_it_is_verified_or_inflated(door):
    updater = door.updater
    updater.start()
    # Signed by the hub's own key, so verifying it would succeed and inflating it would cost
    # a lot: it is refused by its size alone.
    doc = AccessList(site=SITE, version=7)
    body = zlib.compress(json.dumps({"pad": "x" * (MAX_LIST_BYTES + 1)}).encode(), 9)
    body += os.urandom(MAX_LIST_BYTES - len(body) + 10)
    huge = seal(HUB, protocol.acl_header(doc, datetime.now(UTC)), body)
    assert len(huge) > MAX_LIST_BYTES
    updater.submit(huge)
    assert not updater.mailbox.pending()
    assert wait_for(lambda: len(door.refusal_events()) == 1, 5)
    [event] = door.refusal_events()
    assert f"over {MAX_LIST_BYTES}" in event["reason"] and "version" not in event
    assert updater.seen_version == 1  # never verified, so never seen
