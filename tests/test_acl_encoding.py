"""Bodies encoded with their shared runs of entries compressed once are ordinary zlib streams of
exactly the JSON a list or delta gives on its own, and a door reads them as any other."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

from hafen import protocol
from hafen.acl import AccessList, AccessListDelta, Card, Grant, Member, Plan
from hafen.cards import card_hash
from hub.acl_encoding import BLOCK, SharedEncoder

PLANS = [
    Plan(id="netz"),
    Plan(id="buero", windows=[{"days": ["mon", "fri"], "start": "07:00", "end": "20:00"}]),
]
MEMBERS = [
    Member(
        id=f"m{i:04d}",
        blocked=i % 97 == 0,
        grants=[Grant(plan="netz"), Grant(sites=["a"], valid_until="2026-12-31")],
    )
    for i in range(3 * BLOCK + 5)
]
CARDS = [
    Card(hash=card_hash(b"k" * 16, i.to_bytes(7, "big")), member=m.id, revoked=i % 5 == 0)
    for i, m in enumerate(MEMBERS)
]


def delta(site: str, members: list[Member] = MEMBERS) -> AccessListDelta:
    return AccessListDelta(
        site=site,
        version=8,
        base=7,
        plans=PLANS,
        members=members,
        cards=[c for c in CARDS if c.member in {m.id for m in members}],
        removed_members=["gone"],
        removed_cards=["ab" * 16],
    )


def test_a_body_is_the_json_of_its_message_deflated():
    encoder = SharedEncoder()
    docs: list[AccessList | AccessListDelta] = [
        delta("a"),
        delta("b", MEMBERS[:1] + MEMBERS[2:]),  # one member fewer: the runs shift
        delta("c", MEMBERS[:2]),
        AccessListDelta(site="d", version=2, base=1, removed_plans=["old"]),
        AccessList(site="e", version=1, plans=PLANS, members=MEMBERS, cards=CARDS),
        AccessList(site="f", version=1),
    ]
    for doc in docs:
        body = encoder.body(doc)
        assert zlib.decompress(body) == doc.model_dump_json(exclude_none=True).encode()
        header = protocol.acl_header(doc, datetime.now(UTC))
        assert protocol.read_acl_body(header, body) == doc


def test_sites_that_list_the_same_entries_share_their_compressed_runs():
    encoder = SharedEncoder()
    first, second = encoder.body(delta("a")), encoder.body(delta("b"))
    # The same runs of members and cards, deflated once: only the head with the site's
    # name (a few hundred bytes) and the checksum at the end differ.
    assert len(first) == len(second) > 20_000
    differing = [i for i, (x, y) in enumerate(zip(first, second, strict=True)) if x != y]
    assert all(i < 512 or i >= len(first) - 4 for i in differing), differing
    # And deflating in runs costs little against deflating the whole.
    assert len(second) < 1.02 * len(protocol.acl_body(delta("b")))
