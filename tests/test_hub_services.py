"""The hub's service layer on SQLite and PostgreSQL: what each role may see is decided by the
services themselves, and a change sends the doors exactly what it changed.

The publisher is the real one; only its broker is replaced by a list of what it was handed
(it records every version in the store first, which is what these tests read back).
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, select

from hafen import protocol
from hafen.acl import AccessListDelta
from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal, Role
from hub.services import (
    booking_reads,
    bookings,
    cards,
    events,
    fleet,
    occupancy,
    overview,
    reports,
    sites,
)
from hub.services.booking_models import BookingIn
from hub.services.errors import Forbidden, NotFound, Unavailable
from hub.services.scope import Scope
from tests.support.booking import at, today

ANN_CARD, BEA_CARD = "a" * 32, "b" * 32
ADMIN = Principal(1, "admin", Role.NETWORK_ADMIN, frozenset())
OPERATOR = Principal(2, "op", Role.SITE_OPERATOR, frozenset({"a"}))
TECHNICIAN = Principal(3, "tech", Role.TECHNICIAN, frozenset())


class Hub:
    """A store with three sites, two members and a publisher whose broker is a list."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = db.connect(url)
        self.sent: list[tuple[str, bytes, bool]] = []
        self.publisher = AclPublisher(
            self.engine, Ed25519PrivateKey.generate(), lambda *m: self.sent.append(m)
        )
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(insert(db.sites), [{"id": s, "timezone": "Europe/Berlin"} for s in "abc"])
            conn.execute(
                insert(db.devices), [{"site": s, "id": "door-1", "created_at": now} for s in "abc"]
            )
            conn.execute(insert(db.plans).values(id="ab", sites=["a", "b"], windows=None))
            conn.execute(
                insert(db.members), [{"id": m, "name": m.title(), "blocked": False} for m in "ab"]
            )
            conn.execute(insert(db.grants).values(member_id="a", plan_id="ab"))  # ann: a and b
            conn.execute(insert(db.grants).values(member_id="b", sites=["c"]))  # bea: c only
            conn.execute(
                insert(db.cards),
                [
                    {"hash": ANN_CARD, "member_id": "a", "revoked": False},
                    {"hash": BEA_CARD, "member_id": "b", "revoked": False},
                ],
            )
            conn.execute(
                insert(db.events),
                [
                    {
                        "event_id": f"e{site}",
                        "site": site,
                        "device": "door-1",
                        "epoch": "00000000000000aa",
                        "seq": 1,
                        "kind": "door.decision",
                        "at": now,
                        "data": {"allowed": True, "member": "a"},
                        "received_at": now,
                        "member": "a",
                    }
                    for site in "abc"
                ],
            )
        self.publisher.publish_sites({"a", "b", "c"})  # version 1 everywhere
        self.sent.clear()

    def newest(self, site: str) -> tuple[int, str, bytes]:
        """The site's newest recorded version: (version, kind, body)."""
        v = db.acl_versions.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(v.version, v.kind, v.body)
                .where(v.site == site)
                .order_by(v.version.desc())
                .limit(1)
            ).one()
        return row.version, row.kind, zlib.decompress(row.body)


@pytest.fixture
def hub(hub_url):
    hub = Hub(hub_url)
    yield hub
    hub.engine.dispose()


def test_revoking_a_card_sends_its_members_entry_to_their_sites_and_nowhere_else(hub):
    revocation = cards.revoke_card(hub.engine, hub.publisher, ANN_CARD)
    assert revocation.card == cards.Card(hash=ANN_CARD, member="a", revoked=True)
    assert sorted((p.site, p.version, p.kind) for p in revocation.published) == [
        ("a", 2, "delta"),
        ("b", 2, "delta"),
    ]
    assert sorted(topic for topic, _, retain in hub.sent if retain) == [
        protocol.acl_topic("a"),
        protocol.acl_topic("b"),
    ]
    for site in "ab":
        delta = AccessListDelta.model_validate_json(hub.newest(site)[2])
        assert [m.id for m in delta.members] == ["a"]
        assert [(c.hash, c.revoked) for c in delta.cards] == [(ANN_CARD, True)]
        assert not (delta.removed_members or delta.removed_cards)
    assert hub.newest("c")[0] == 1, "bea's site heard nothing"


def test_without_a_broker_a_revocation_is_stored_and_nothing_is_sent(hub):
    revocation = cards.revoke_card(hub.engine, None, BEA_CARD)
    assert revocation.published == [] and revocation.card.revoked
    with hub.engine.connect() as conn:
        assert conn.scalar(select(db.cards.c.revoked).where(db.cards.c.hash == BEA_CARD))
    with pytest.raises(NotFound):
        cards.revoke_card(hub.engine, hub.publisher, "f" * 32)
    with pytest.raises(Unavailable):
        cards.add_card(hub.engine, hub.publisher, None, "a", cards.CardIn(uid="04A1B2C3D4E5F6"))


def test_a_booking_and_its_cancellation_reach_their_one_site(hub):
    tomorrow = today() + timedelta(days=1)  # a booking in the past is refused
    start = datetime.fromisoformat(at(tomorrow, "09:00"))
    booking = BookingIn(member="b", starts_at=start, ends_at=start + timedelta(hours=8))
    booked = bookings.book(hub.engine, hub.publisher, OPERATOR, "a", booking)
    assert [hub.newest(s)[:2] for s in "abc"] == [(2, "delta"), (1, "snapshot"), (1, "snapshot")]
    delta = AccessListDelta.model_validate_json(hub.newest("a")[2])
    assert [m.id for m in delta.members] == ["b"]
    bookings.cancel(hub.engine, hub.publisher, OPERATOR, booked.id)
    delta = AccessListDelta.model_validate_json(hub.newest("a")[2])
    assert delta.removed_members == ["b"] and hub.newest("b")[0] == 1
    with pytest.raises(NotFound):  # another operator's site: as if there were none
        bookings.book(hub.engine, hub.publisher, OPERATOR, "b", booking)
    with pytest.raises(Forbidden):
        bookings.book(hub.engine, hub.publisher, TECHNICIAN, "a", booking)


def test_an_operator_sees_their_sites_only_and_others_do_not_exist_for_them(hub):
    assert [s.id for s in sites.list_sites(hub.engine, OPERATOR)] == ["a"]
    assert [s.id for s in sites.list_sites(hub.engine, TECHNICIAN)] == ["a", "b", "c"]
    assert {r.site for r in fleet.fleet_rows(hub.engine, OPERATOR)} == {"a"}
    assert {e.site for e in events.search_events(hub.engine, OPERATOR)} == {"a"}
    assert {e.site for e in events.search_events(hub.engine, ADMIN)} == {"a", "b", "c"}
    month = datetime.now(UTC).strftime("%Y-%m")
    assert [r.site for r in reports.monthly_report(hub.engine, OPERATOR, month)] == ["a"]
    for read in (
        lambda: sites.get_site(hub.engine, OPERATOR, "b"),
        lambda: occupancy.occupancy_now(hub.engine, OPERATOR, "b"),
        lambda: events.search_events(hub.engine, OPERATOR, site="b"),
        lambda: reports.monthly_report(hub.engine, OPERATOR, month, "b"),
    ):
        with pytest.raises(NotFound, match="no site 'b'"):
            read()


def test_a_technician_looks_after_devices_and_sees_no_people(hub):
    assert [d.id for d in sites.list_devices(hub.engine, TECHNICIAN, "c")] == ["door-1"]
    for read in (
        lambda: occupancy.occupancy_now(hub.engine, TECHNICIAN, "a"),
        lambda: events.search_events(hub.engine, TECHNICIAN),
        lambda: reports.monthly_report(hub.engine, TECHNICIAN, "2026-01"),
        lambda: occupancy.day_curve(hub.engine, TECHNICIAN, "a"),
        lambda: booking_reads.day_guests(hub.engine, TECHNICIAN, "a"),
    ):
        with pytest.raises(Forbidden):
            read()
    live = overview.build_live(hub.engine)
    [shown] = [s for s in overview.visible(live, TECHNICIAN) if s["site"] == "a"]
    assert shown["devices"] == 1
    assert all(shown[field] is None for field in overview.PEOPLE_FIELDS)
    [admin_view] = [s for s in overview.visible(live, ADMIN) if s["site"] == "a"]
    assert admin_view["entries_today"] == 0, "admins see the figures about people"
    assert Scope(TECHNICIAN).key != Scope(ADMIN).key, "so their payloads are not shared"
