"""What a site operator learns of other sites: their members only by id (what the door needs),
and not even where another site's bookings live; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from hub import db
from tests.support.booking import rest_of_today
from tests.support.events import tap
from tests.support.hub import PASSWORD, as_user
from tests.support.sites import add_sites

SECRETS = ("Bert Geheim", "bert@example.org")


@pytest.fixture
def network(api):
    """Bert, a member of Borna only (his plan), and Lena of Leipzig-Ost; olga runs
    Leipzig-Ost. Returns (nadia's header, olga's header)."""
    nadia = add_sites(api)
    members = (
        {"id": "bert", "name": SECRETS[0], "email": SECRETS[1]},
        {"id": "lena", "name": "Lena Local", "email": "lena@example.org"},
    )
    for member in members:
        assert api.post("/members", json=member, headers=nadia).status_code == 201
    assert api.post("/plans", json={"id": "borna-flex", "sites": ["borna"]}, headers=nadia)
    assert api.post("/members/bert/grants", json={"plan": "borna-flex"}, headers=nadia)
    assert api.post("/members/lena/grants", json={"sites": ["leipzig-ost"]}, headers=nadia)
    return nadia, as_user(api, "olga")


def booking(member: str) -> dict:
    """A day guest for the rest of today (a booking lies within one of the site's days)."""
    starts_at, ends_at = rest_of_today()
    return {"member": member, "starts_at": starts_at, "ends_at": ends_at}


def test_an_operator_who_books_another_sites_member_never_learns_their_name(api, network):
    nadia, olga = network
    answers = []
    for member in ("bert", "lena"):
        made = api.post("/sites/leipzig-ost/bookings", json=booking(member), headers=olga)
        assert made.status_code == 201, made.text
        answers.append(made)
    # Bert comes in: the door lets him in, ingest keeps the visit and the event.
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    with api.engine.begin() as conn:
        conn.execute(insert(db.events), [tap("leipzig-ost", "bert", now) | {"member": "bert"}])
        conn.execute(
            insert(db.visits),
            [
                {"site": "leipzig-ost", "day": today, "member": m, "first_at": now}
                | {"last_at": now, "entries": 1}
                for m in ("bert", "lena")
            ],
        )
    guests = api.get("/sites/leipzig-ost/bookings", headers=olga)
    assert {g["member"]: g["name"] for g in guests.json()} == {"bert": None, "lena": "Lena Local"}
    visits = api.get("/sites/leipzig-ost/visits", headers=olga)
    assert {v["member"]: v["name"] for v in visits.json()} == {"bert": None, "lena": "Lena Local"}
    events = api.get("/events", params={"site": "leipzig-ost"}, headers=olga)
    answers += [guests, visits, events]
    # The dashboard's site page names its events' members: Bert by id only.
    sign_in = {"username": "olga", "password": PASSWORD, "next": "/ui/sites/leipzig-ost"}
    page = api.post("/ui/sign-in", data=sign_in)
    assert page.status_code == 200 and "bert" in page.text
    answers.append(page)
    for answer in answers:
        for secret in SECRETS:
            assert secret not in answer.text, answer.request.url
    # The network admin still sees who everyone is.
    named = api.get("/sites/leipzig-ost/bookings", headers=nadia).json()
    assert {g["member"]: g["name"] for g in named} == {"bert": SECRETS[0], "lena": "Lena Local"}


def test_a_booking_of_another_site_answers_as_one_that_does_not_exist(api, network):
    nadia, olga = network
    borna = api.post("/sites/borna/bookings", json=booking("bert"), headers=nadia).json()["id"]
    elsewhere = api.delete(f"/bookings/{borna}", headers=olga)
    nowhere = api.delete(f"/bookings/{borna + 1000}", headers=olga)
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.json() == nowhere.json() == {"detail": "no such booking"}
    assert "borna" not in elsewhere.text
    tim = as_user(api, "tim")  # a technician: no bookings at all, existing or not
    assert api.delete(f"/bookings/{borna}", headers=tim).json() == (
        api.delete(f"/bookings/{borna + 1000}", headers=tim).json()
    )
    assert api.delete(f"/bookings/{borna}", headers=nadia).json()["cancelled"] is True
