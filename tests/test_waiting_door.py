"""End to end through a real mosquitto and a door, on SQLite and PostgreSQL: a booking nobody
tapped in for is released, the desk goes to the member waiting for it, and the door (told by
the hub's deltas) now lets the waiting member's card in, and no longer the other's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from hub import db
from hub.services.no_shows import sweep
from tests.support.booking import member_user, set_site, today
from tests.support.network import acl_version, connected_edge, door_decisions, tap_again
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

BO = "04A1B2C3D4E5F6"
MIA = "04B2C3D4E5F6A7"


def door_online(hub, site: str) -> bool:
    with hub.engine.connect() as conn:
        s = db.device_states.c
        return conn.scalar(select(s.online).where(s.site == site)) is True


def test_a_released_desk_goes_to_the_waiting_member_whose_card_then_opens_the_door(
    tmp_path, network_api, mock_pins
):
    hub, api = network_api
    admin = add_sites(api)
    # One desk; a booking made today is due a moment after it was made (no grace time).
    set_site(api.engine, "leipzig-ost", desks=1, grace_minutes=0)
    # The plan lets its members book anywhere and come in only where and when they booked
    # (its own hours, three days from today at 03:00, never while this test runs).
    weekday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(today().weekday() + 3) % 7]
    plan = {
        "id": "flex",
        "access": "booked",
        "windows": [{"days": [weekday], "start": "03:00", "end": "03:15"}],
    }
    assert api.post("/plans", json=plan).status_code == 201
    mia, bo = (member_user(api, name, admin, plan="flex") for name in ("mia", "bo"))
    for member, uid in (("mia", MIA), ("bo", BO)):
        assert api.post(f"/members/{member}/cards", json={"uid": uid}).status_code == 201
    with connected_edge(tmp_path, hub, site="leipzig-ost") as (door, card):
        assert wait_for(lambda: acl_version(door) == hub.publisher.newest("leipzig-ost"), 10)
        assert wait_for(lambda: door_online(hub, "leipzig-ost"), 10)
        card.present(bytes.fromhex(BO))
        assert wait_for(lambda: len(door_decisions(hub)) == 1, 20)
        assert door_decisions(hub)[0]["allowed"] is False
        now = {"site": "leipzig-ost", "kind": "desk", "day": str(today()), "part": "day"}
        booked = api.post("/me/bookings", json=now, headers=mia)
        assert booked.status_code == 201, booked.text
        waiting = api.post(
            "/me/waiting", json={"site": "leipzig-ost", "day": str(today())}, headers=bo
        )
        assert waiting.status_code == 201, waiting.text
        assert wait_for(lambda: acl_version(door) == hub.publisher.newest("leipzig-ost"), 10)
        # Mia never taps in: the sweep releases her desk. Its settling time is cut to a
        # moment: ingest and the door are real, and have been listening for seconds only.
        settle = timedelta(seconds=2)
        done = sweep(hub.engine, hub.publisher, now=datetime.now(UTC) + 1.5 * settle, settle=settle)
        [given] = api.get("/me/bookings", headers=bo).json()
        assert (done.released, done.given) == ([booked.json()["id"]], [given["id"]])
        assert wait_for(lambda: acl_version(door) == hub.publisher.newest("leipzig-ost"), 10)
        tap_again(card, BO)
        assert wait_for(lambda: len(door_decisions(hub)) == 2, 20)
        let_in = door_decisions(hub)[1]
        assert (let_in["allowed"], let_in["member"]) == (True, "bo")
        tap_again(card, MIA)
        assert wait_for(lambda: len(door_decisions(hub)) == 3, 20)
        assert door_decisions(hub)[2]["allowed"] is False
