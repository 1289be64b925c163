"""The door keeps which hub key vouched for the list in force, so its self-test can say whether
a key it trusts signed it: signed lists through the agent's updater, hand-loaded ones as such,
and a list applied before signers were kept gets one from the hub's list arriving again."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.access_list import SIGNER_KEY, applied_signer, applied_version, apply_snapshot
from edge.agent.remote import AclUpdater
from edge.agent.store import EdgeStore
from hafen import protocol
from hafen.acl import AccessList, AccessListDelta
from hafen.signing import public_key_text, seal
from tests.support.edge import ANNA, CARD_KEY, site_acl

SITE = "leipzig-ost"
TZ = ZoneInfo("Europe/Berlin")
HUB, OTHER = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


def sealed(key: Ed25519PrivateKey, doc: AccessList | AccessListDelta) -> bytes:
    return seal(key, protocol.acl_header(doc, datetime.now(UTC)), protocol.acl_body(doc))


def updater(store: EdgeStore) -> AclUpdater:
    trusted = [HUB.public_key(), OTHER.public_key()]
    return AclUpdater(store, SITE, TZ, CARD_KEY, trusted, lambda: None)


def delta(version: int, base: int, key: Ed25519PrivateKey = HUB) -> bytes:
    return sealed(key, AccessListDelta(site=SITE, version=version, base=base))


def test_each_signed_list_records_the_key_that_signed_it(tmp_path):
    store = EdgeStore(tmp_path / "edge.db", "normal")
    door = updater(store)
    assert door.handle(sealed(HUB, site_acl({ANNA: "anna"}))) == 1
    assert applied_signer(store) == public_key_text(HUB)
    assert door.handle(delta(2, 1, OTHER)) == 2
    assert applied_signer(store) == public_key_text(OTHER)


def test_a_hand_loaded_list_stays_unsigned_under_signed_deltas(tmp_path):
    store = EdgeStore(tmp_path / "edge.db", "normal")
    apply_snapshot(store, site_acl({ANNA: "anna"}), SITE, TZ, CARD_KEY)  # hafen edge load-acl
    assert applied_signer(store) == ""
    door = updater(store)
    assert door.handle(delta(2, 1)) == 2
    assert applied_signer(store) == "", "the hub signed the change, not the list it changed"
    door.handle(delta(2, 1))  # the hub's list of the applied version again: no vouching
    assert applied_signer(store) == ""


def test_a_list_applied_before_signers_were_kept_is_vouched_for_by_the_hubs_list(tmp_path):
    store = EdgeStore(tmp_path / "edge.db", "normal")
    door = updater(store)
    door.handle(sealed(HUB, site_acl({ANNA: "anna"})))
    with store.write() as conn:  # as a door upgraded from before kept it
        store.delete_meta(conn, SIGNER_KEY)
    assert applied_signer(store) is None
    assert door.handle(sealed(HUB, site_acl({ANNA: "anna"}))) is None  # the retained list again
    assert applied_signer(store) == public_key_text(HUB)
    assert applied_version(store) == 1
