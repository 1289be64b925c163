"""A member's own things through the API: their profile, cards and visits, and a lost card
revoked at once at the door (a real broker and door); nobody else's, whatever they ask."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from hub import db
from hub.auth import Role
from tests.support.edge import CARD_KEY
from tests.support.hub import add_staff, add_user, api_client, as_user
from tests.support.network import acl_version, connected_edge, door_decisions, tap_again
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

ANNA_CARD, ANNA_SPARE, BERT_CARD = "04A1B2C3D4E5F6", "04A1B2C3D4E5F7", "04B1B2C3D4E5F6"


@pytest.fixture
def members_api(engine):
    """The API with a card key; anna (plan flex, two cards) and bert (one card) as members,
    each a user of their own; yields (api, admin's header)."""
    add_staff(engine)
    with api_client(engine, CARD_KEY) as api:
        admin = add_sites(api)
        api.post("/plans", json={"id": "flex"}, headers=admin)
        api.put(
            "/companies/acme", json={"id": "acme", "name": "ACME", "plan": "flex"}, headers=admin
        )
        for member, cards in (("anna", [ANNA_CARD, ANNA_SPARE]), ("bert", [BERT_CARD])):
            body = {"id": member, "name": member.title(), "email": f"{member}@example.org"}
            api.post("/members", json=body, headers=admin)
            for uid in cards:
                assert api.post(
                    f"/members/{member}/cards", json={"uid": uid}, headers=admin
                ).is_success
            add_user(engine, Role.MEMBER, username=member, member_id=member)
        api.post("/members/anna/grants", json={"plan": "flex"}, headers=admin)
        api.put("/members/bert/company", json={"company": "acme"}, headers=admin)
        yield api, admin


def visit(engine, member: str, site: str, day: date, hour: int) -> None:
    first = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)
    with engine.begin() as conn:
        conn.execute(
            insert(db.visits).values(
                site=site,
                day=day.isoformat(),
                member=member,
                company=None,
                first_at=first,
                last_at=first + timedelta(hours=3),
                entries=2,
            )
        )


def test_a_member_sees_their_own_profile_cards_and_visits_and_nobody_elses(members_api):
    api, _ = members_api
    anna, bert = as_user(api, "anna"), as_user(api, "bert")
    profile = api.get("/me/profile", headers=anna).json()
    assert profile == {"id": "anna", "name": "Anna", "email": "anna@example.org",
                       "company": None, "plans": ["flex"]}  # fmt: skip
    assert api.get("/me/profile", headers=bert).json()["company"] == {"id": "acme", "name": "ACME"}
    assert api.get("/me/profile", headers=bert).json()["plans"] == ["flex"]  # the company's

    cards = api.get("/me/cards", headers=anna).json()
    assert len(cards) == 2 and all(not c["revoked"] and len(c["id"]) == 12 for c in cards)
    with api.engine.connect() as conn:
        hashes = set(conn.scalars(select(db.cards.c.hash)))
    for card in cards:  # neither the number nor the hash the doors know
        assert not any(card["id"] in h for h in hashes)
    [bert_card] = api.get("/me/cards", headers=bert).json()
    assert api.post(f"/me/cards/{bert_card['id']}/lost", headers=anna).status_code == 404
    assert api.get("/me/cards", headers=bert).json() == [bert_card]  # untouched

    today = datetime.now(UTC).date()
    visit(api.engine, "anna", "borna", today - timedelta(days=1), 8)
    visit(api.engine, "anna", "leipzig-ost", today - timedelta(days=200), 9)
    visit(api.engine, "bert", "borna", today - timedelta(days=1), 10)
    [recent] = api.get("/me/visits", headers=anna).json()  # the last 90 days
    assert recent["site"] == "borna" and recent["site_name"] == "Borna"
    assert recent["first_entry"].startswith(f"{today - timedelta(days=1)}T08:00")
    since = (today - timedelta(days=365)).isoformat()
    both = api.get("/me/visits", params={"since": since}, headers=anna).json()
    assert [v["site"] for v in both] == ["borna", "leipzig-ost"]
    assert len(api.get("/me/visits", params={"since": since, "limit": 1}, headers=anna).json()) == 1
    assert api.get("/me/visits", params={"limit": 501}, headers=anna).status_code == 422
    assert [v["site"] for v in api.get("/me/visits", headers=bert).json()] == ["borna"]


def test_reporting_a_card_lost_revokes_it_and_only_that_one(members_api):
    api, _ = members_api
    anna = as_user(api, "anna")
    first, second = api.get("/me/cards", headers=anna).json()
    lost = api.post(f"/me/cards/{first['id']}/lost", headers=anna)
    assert lost.status_code == 200 and lost.json() == {"id": first["id"], "revoked": True}
    assert api.get("/me/cards", headers=anna).json() == [
        {"id": first["id"], "revoked": True}, second,
    ]  # fmt: skip
    assert api.post(f"/me/cards/{first['id']}/lost", headers=anna).status_code == 200  # again
    assert api.post("/me/cards/000000000000/lost", headers=anna).status_code == 404


def test_only_members_reach_their_own_things(members_api):
    api, admin = members_api
    engine = api.engine
    add_user(engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    add_user(engine, Role.COMPANY_ADMIN, username="carl", company_id="acme", member_id="carl")
    api.post("/members", json={"id": "carl", "name": "Carl"}, headers=admin)
    assert api.get("/me/profile", headers=as_user(api, "carl")).json()["id"] == "carl"
    refused = api.get("/me/profile", headers=as_user(api, "cora"))
    assert (
        refused.status_code == 403 and refused.json()["detail"] == "your account is not a member's"
    )
    for staff in ("nadia", "olga", "tim"):
        assert api.get("/me/cards", headers=as_user(api, staff)).status_code == 403
    assert api.get("/me/profile").status_code == 401
    assert api.get("/company/staff", headers=as_user(api, "anna")).status_code == 403


def test_a_card_reported_lost_is_refused_at_the_door_at_once(tmp_path, network_api, mock_pins):
    hub, api = network_api
    add_sites(api)
    api.post("/plans", json={"id": "flex"})
    api.post("/members", json={"id": "anna", "name": "Anna"})
    api.post("/members/anna/grants", json={"plan": "flex"})
    api.post("/members/anna/cards", json={"uid": ANNA_CARD})
    add_user(hub.engine, Role.MEMBER, username="anna", member_id="anna")
    anna = as_user(api, "anna")
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        card.present(bytes.fromhex(ANNA_CARD))
        assert wait_for(lambda: len(door_decisions(hub)) == 1, 10)
        assert door_decisions(hub)[0]["allowed"] is True
        version = acl_version(agent)
        [mine] = api.get("/me/cards", headers=anna).json()
        assert api.post(f"/me/cards/{mine['id']}/lost", headers=anna).status_code == 200
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        tap_again(card, ANNA_CARD)
        assert wait_for(lambda: len(door_decisions(hub)) == 2, 10)
        assert door_decisions(hub)[1]["reason"] == "revoked"
