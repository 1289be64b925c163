"""A company's sites and a plan's access, changed at the hub, reach a simulated door through a
real mosquitto as deltas: staff get in where their employer added a site and no longer where it
dropped one; a member of a booked plan gets in only with a booking."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from hub import db
from hub.access_changes import plan_state
from hub.services.publishing import publish_member, publish_plan_change
from tests.support.network import acl_version, connected_edge
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

ANNA = "04A1B2C3D4E5F6"


def tap_again(card) -> None:
    """Take the card away long enough for the reader to notice (two empty polls), then tap."""
    time.sleep(2.5)
    card.present(bytes.fromhex(ANNA))


def decisions(hub) -> list[dict]:
    return [e.data for e in hub.events() if e.kind == "door.decision"]


def test_staff_get_in_where_their_company_adds_a_site_and_not_once_it_drops_it(
    tmp_path, network_api, mock_pins
):
    hub, api = network_api
    add_sites(api)
    api.post("/plans", json={"id": "flex"})
    # Someone on the network-wide plan: the door has a list before acme adds its site.
    api.post("/members", json={"id": "anna", "name": "Anna"})
    api.post("/members/anna/grants", json={"plan": "flex"})
    api.post("/members", json={"id": "bob", "name": "Bob"})
    api.post("/members/bob/cards", json={"uid": ANNA})
    company = {"id": "acme", "name": "ACME", "plan": "flex", "sites": ["borna"]}
    assert api.put("/companies/acme", json=company).status_code == 200
    assert api.put("/members/bob/company", json={"company": "acme"}).status_code == 200
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        version = acl_version(agent)
        company["sites"] = ["borna", "leipzig-ost"]
        assert api.put("/companies/acme", json=company).status_code == 200
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        card.present(bytes.fromhex(ANNA))
        assert wait_for(lambda: len(decisions(hub)) == 1, 10)
        assert decisions(hub)[0]["allowed"] is True and decisions(hub)[0]["member"] == "bob"
        version = acl_version(agent)
        company["sites"] = ["borna"]
        assert api.put("/companies/acme", json=company).status_code == 200
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 2, 10)
        assert decisions(hub)[1]["reason"] == "unknown_card"  # bob and his card are gone
    # After the site's first list, both changes went out as deltas.
    with hub.engine.connect() as conn:
        v = db.acl_versions.c
        kinds = conn.scalars(
            select(v.kind).where(v.site == "leipzig-ost").order_by(v.version)
        ).all()
    assert kinds == ["snapshot", "delta", "delta"]


def test_a_booked_plan_lets_its_member_in_only_with_a_booking(tmp_path, network_api, mock_pins):
    hub, api = network_api
    add_sites(api)
    api.post("/plans", json={"id": "zehnerkarte"})
    api.post("/members", json={"id": "anna", "name": "Anna"})
    api.post("/members/anna/cards", json={"uid": ANNA})
    api.post("/members/anna/grants", json={"plan": "zehnerkarte"})
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        version = acl_version(agent)
        # The plan becomes a flex plan of booked days: no standing access any more.
        with hub.engine.begin() as conn:
            before = plan_state(conn, "zehnerkarte")
            plans = db.plans.c
            conn.execute(update(db.plans).where(plans.id == "zehnerkarte").values(access="booked"))
        assert before is not None
        publish_plan_change(hub.publisher, before)
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        card.present(bytes.fromhex(ANNA))
        assert wait_for(lambda: len(decisions(hub)) == 1, 10)
        assert decisions(hub)[0]["reason"] == "unknown_card"
        # A booking for today, its grant as hub.services.bookings.book() writes it.
        now = datetime.now(UTC)
        starts, ends = now - timedelta(minutes=5), now + timedelta(hours=8)
        with hub.engine.begin() as conn:
            booking = conn.execute(
                insert(db.bookings)
                .returning(db.bookings.c.id)
                .values(
                    member_id="anna",
                    site_id="leipzig-ost",
                    kind="desk",
                    starts_at=starts,
                    ends_at=ends,
                    created_at=now,
                )
            ).scalar_one()
            conn.execute(
                insert(db.grants).values(
                    member_id="anna",
                    source="booking",
                    booking_id=booking,
                    sites=["leipzig-ost"],
                    valid_from=starts,
                    valid_until=ends,
                )
            )
        publish_member(hub.publisher, "anna", {"leipzig-ost"})
        assert wait_for(lambda: acl_version(agent) == version + 2, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 2, 10)
        assert decisions(hub)[1]["allowed"] is True and decisions(hub)[1]["member"] == "anna"
