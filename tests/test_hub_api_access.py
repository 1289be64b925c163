"""Changes made through the hub's API reach a simulated door through a real mosquitto."""

from __future__ import annotations

import time
from datetime import timedelta

from hub.auth import Role
from tests.support.booking import at, rest_of_today, today
from tests.support.hub import sign_in_as
from tests.support.network import acl_version, connected_edge
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

ANNA = "04A1B2C3D4E5F6"


def tap_again(card) -> None:
    """Take the card away long enough for the reader to notice (two empty polls), then tap."""
    time.sleep(2.5)
    card.present(bytes.fromhex(ANNA))


def decisions(hub):
    return [e.data for e in hub.events() if e.kind == "door.decision"]


def test_a_member_card_and_revocation_made_in_the_api_reach_the_door(
    tmp_path, network_api, mock_pins
):
    hub, api = network_api
    assert api.post("/sites", json={"id": "leipzig-ost", "name": "Leipzig-Ost"}).status_code == 201
    assert api.post("/sites", json={"id": "borna", "name": "Borna"}).status_code == 201
    assert api.post("/plans", json={"id": "borna-only", "sites": ["borna"]}).status_code == 201
    assert api.post("/plans", json={"id": "flex"}).status_code == 201
    assert api.post("/members", json={"id": "anna", "name": "Anna"}).status_code == 201
    with connected_edge(tmp_path, hub) as (agent, card):
        # A plan for another site: this door's list does not change, it stays empty.
        api.post("/members/anna/grants", json={"plan": "borna-only"})
        added = api.post("/members/anna/cards", json={"uid": ANNA})
        assert added.status_code == 201 and ANNA.lower() not in added.text.lower()
        card.present(bytes.fromhex(ANNA))
        assert wait_for(lambda: len(decisions(hub)) == 1, 10)
        assert decisions(hub)[0]["reason"] == "unknown_card"
        # The network-wide plan reaches this site at once.
        assert api.post("/members/anna/grants", json={"plan": "flex"}).status_code == 201
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 2, 10)
        assert decisions(hub)[1]["allowed"] is True
        version = acl_version(agent)
        assert api.post(f"/cards/{added.json()['hash']}/revoke").status_code == 200
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 3, 10)
        assert decisions(hub)[2]["reason"] == "revoked"


def test_bad_member_input_is_422_and_conflicts_409(network_api):
    _hub, api = network_api
    api.post("/members", json={"id": "anna", "name": "Anna"})
    assert api.post("/members", json={"id": "anna", "name": "Again"}).status_code == 409
    assert api.post("/members/anna/cards", json={"uid": "not a uid!"}).status_code == 422
    assert api.post("/members/ghost/cards", json={"uid": ANNA}).status_code == 404
    assert api.post("/members/anna/cards", json={"uid": ANNA}).status_code == 201
    assert api.post("/members/anna/cards", json={"uid": ANNA}).status_code == 409
    bad_grant = api.post("/members/anna/grants", json={"valid_from": "2026-01-01T00:00:00Z"})
    assert bad_grant.status_code == 422
    assert api.post("/members/anna/grants", json={"plan": "nope"}).status_code == 422
    assert api.post("/members", json={"id": "b", "name": "B", "email": "x"}).status_code == 422


def test_a_booking_opens_its_site_only_and_only_in_its_time(tmp_path, network_api, mock_pins):
    hub, api = network_api
    add_sites(api)
    api.post("/members", json={"id": "anna", "name": "Anna"})
    tomorrow = today() + timedelta(days=1)

    def book(site: str, starts_at: str, ends_at: str) -> int:
        body = {"member": "anna", "kind": "day", "starts_at": starts_at, "ends_at": ends_at}
        response = api.post(f"/sites/{site}/bookings", json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    with connected_edge(tmp_path, hub) as (agent, card):
        api.post("/members/anna/cards", json={"uid": ANNA})
        book("borna", *rest_of_today())  # another site: not this door
        card.present(bytes.fromhex(ANNA))
        assert wait_for(lambda: len(decisions(hub)) == 1, 10)
        assert decisions(hub)[0]["reason"] == "unknown_card"
        later = book("leipzig-ost", at(tomorrow, "08:00"), at(tomorrow, "16:00"))
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 2, 10)
        assert decisions(hub)[1]["reason"] == "not_yet_valid"
        version = acl_version(agent)
        now = book("leipzig-ost", *rest_of_today())
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 3, 10)
        assert decisions(hub)[2]["allowed"] is True
        for booking in (now, later):
            assert api.delete(f"/bookings/{booking}").json()["cancelled"] is True
        assert wait_for(lambda: acl_version(agent) == version + 3, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 4, 10)
        assert decisions(hub)[3]["reason"] == "unknown_card"


def test_operators_book_day_guests_at_their_site_only(network_api):
    from datetime import UTC, datetime

    _hub, api = network_api
    add_sites(api)
    api.post("/members", json={"id": "guest", "name": "Day Guest"})
    olga = sign_in_as(api, Role.SITE_OPERATOR, ["leipzig-ost"])
    now = datetime.now(UTC)
    starts_at, ends_at = rest_of_today()
    body = {"member": "guest", "starts_at": starts_at, "ends_at": ends_at}
    assert api.post("/sites/leipzig-ost/bookings", json=body, headers=olga).status_code == 201
    assert api.post("/sites/borna/bookings", json=body, headers=olga).status_code == 404
    borna = api.post("/sites/borna/bookings", json=body).json()["id"]  # the admin may
    assert api.delete(f"/bookings/{borna}", headers=olga).status_code == 404
    too_long = {**body, "ends_at": (now + timedelta(days=40)).isoformat()}
    assert api.post("/sites/leipzig-ost/bookings", json=too_long, headers=olga).status_code == 422
    backwards = {**body, "ends_at": (now - timedelta(hours=1)).isoformat()}
    assert api.post("/sites/leipzig-ost/bookings", json=backwards).status_code == 422


def test_events_are_searchable_per_site_and_member_and_doors_unlock_remotely(
    tmp_path, network_api, mock_pins
):
    hub, api = network_api
    add_sites(api)
    api.post("/plans", json={"id": "flex"})
    api.post("/members", json={"id": "anna", "name": "Anna"})
    api.post("/members/anna/grants", json={"plan": "flex"})
    api.post("/members/anna/cards", json={"uid": ANNA})
    assert api.post("/sites/leipzig-ost/devices", json={"id": "door-1"}).status_code == 201
    bert = sign_in_as(api, Role.SITE_OPERATOR, ["borna"], username="bert")
    with connected_edge(tmp_path, hub, unlock_seconds=0.3) as (agent, card):
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        card.present(bytes.fromhex(ANNA))
        card.present(bytes.fromhex("04E5F60718293A"))
        assert wait_for(lambda: len(decisions(hub)) == 2, 10)
        found = api.get("/events", params={"site": "leipzig-ost", "member": "anna"}).json()
        assert [e["data"]["member"] for e in found] == ["anna"]
        assert len(api.get("/events", params={"kind": "door.decision"}).json()) == 2
        page = api.get("/events", params={"limit": 1}).json()
        older = api.get("/events", params={"limit": 1, "before_id": page[0]["id"]}).json()
        assert page[0]["id"] > older[0]["id"]
        assert api.get("/events", params={"site": "leipzig-ost"}, headers=bert).status_code == 404
        assert api.get("/events", headers=bert).json() == []
        unlock = "/sites/leipzig-ost/devices/door-1/unlock"
        assert api.post(unlock, json={"seconds": 1}, headers=bert).status_code == 404
        sent = api.post(unlock, json={"seconds": 1})
        assert sent.status_code == 202
        assert wait_for(lambda: mock_pins.pin(17).state is True, 10)
        assert wait_for(lambda: any(e.kind == "door.remote_unlock" for e in hub.events()), 10)
        assert api.post("/sites/leipzig-ost/devices/nope/unlock", json={}).status_code == 404
        [door] = api.get("/sites/leipzig-ost/devices").json()
        assert door["online"] is True and door["acl_version"] == acl_version(agent)


def test_company_staff_get_its_plan_at_the_sites_it_booked(tmp_path, network_api, mock_pins):
    hub, api = network_api
    add_sites(api)
    api.post("/plans", json={"id": "flex"})
    api.post("/members", json={"id": "bob", "name": "Bob"})
    api.post("/members/bob/cards", json={"uid": ANNA})
    with connected_edge(tmp_path, hub) as (agent, card):
        company = {"id": "acme", "name": "ACME", "plan": "flex", "sites": ["borna"]}
        assert api.put("/companies/acme", json=company).status_code == 200
        assert api.put("/members/bob/company", json={"company": "acme"}).status_code == 200
        card.present(bytes.fromhex(ANNA))
        assert wait_for(lambda: len(decisions(hub)) == 1, 10)
        assert decisions(hub)[0]["reason"] == "unknown_card"  # ACME booked Borna only
        company["sites"] = ["borna", "leipzig-ost"]
        assert api.put("/companies/acme", json=company).status_code == 200
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        tap_again(card)
        assert wait_for(lambda: len(decisions(hub)) == 2, 10)
        assert decisions(hub)[1]["allowed"] is True and decisions(hub)[1]["member"] == "bob"
        version = acl_version(agent)
        assert api.put("/members/bob/company", json={"company": None}).status_code == 200
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        assert api.put("/members/bob/company", json={"company": "nope"}).status_code == 422
        assert api.put("/companies/x", json={**company, "id": "y"}).status_code == 422


def test_changes_made_while_the_broker_is_away_reach_the_door_when_it_returns(
    tmp_path, network_api, mock_pins
):
    hub, api = network_api
    api.post("/sites", json={"id": "leipzig-ost", "name": "Leipzig-Ost"})
    api.post("/plans", json={"id": "flex"})
    api.post("/members", json={"id": "anna", "name": "Anna"})
    api.post("/sites/leipzig-ost/devices", json={"id": "door-1"})
    with connected_edge(tmp_path, hub) as (agent, card):
        hub.broker.stop()
        # The hub stores the change and answers at once; the list waits for the broker.
        started = time.monotonic()
        assert api.post("/members/anna/grants", json={"plan": "flex"}).status_code == 201
        assert api.post("/members/anna/cards", json={"uid": ANNA}).status_code == 201
        assert time.monotonic() - started < 5
        assert acl_version(agent) == 0
        # A command cannot wait: the operator is told to try again.
        unlock = api.post("/sites/leipzig-ost/devices/door-1/unlock", json={"seconds": 2})
        assert unlock.status_code == 503 and "try again" in unlock.text
        hub.broker.start()
        assert wait_for(lambda: hub.publisher.flush_unsent() == 0, 20)
        assert wait_for(lambda: acl_version(agent) >= 1, 20)
        card.present(bytes.fromhex(ANNA))
        assert wait_for(lambda: len(decisions(hub)) == 1, 20)
        assert decisions(hub)[0]["allowed"] is True


def test_changing_a_plans_hours_reaches_every_door_of_its_sites(tmp_path, network_api, mock_pins):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    hub, api = network_api
    api.post("/sites", json={"id": "leipzig-ost", "name": "Leipzig-Ost"})
    api.post("/plans", json={"id": "flex"})
    api.post("/members", json={"id": "anna", "name": "Anna"})
    api.post("/members/anna/grants", json={"plan": "flex"})
    api.post("/members/anna/cards", json={"uid": ANNA})
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        version = acl_version(agent)
        today = datetime.now(ZoneInfo("Europe/Berlin")).weekday()
        other_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(today + 3) % 7]
        window = {"days": [other_day], "start": "08:00", "end": "09:00"}
        changed = api.put("/plans/flex", json={"id": "flex", "windows": [window]})
        assert changed.status_code == 200
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        card.present(bytes.fromhex(ANNA))
        assert wait_for(lambda: len(decisions(hub)) == 1, 10)
        assert decisions(hub)[0]["reason"] == "outside_schedule"
        assert api.put("/plans/nope", json={"id": "nope"}).status_code == 404
