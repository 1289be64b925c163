"""An employer's staff through the API, as its company admin manages them: invited onto the
list, given allowances within the company's sites, taken off it (their access through the
company ends at a real door at once, every booking the company paid for is cancelled and
the member told; what they booked on their own stays); another company's staff do not
exist for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from hub import db
from hub.auth import Role
from tests.support.booking import member_user, set_site, today
from tests.support.hub import add_user, as_user
from tests.support.network import acl_version, connected_edge, door_decisions, tap_again
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

BOB_CARD = "04A1B2C3D4E5F6"


def companies(api, admin) -> tuple[dict[str, str], dict[str, str]]:
    """ACME (both sites) and Other (Borna), each with its admin signed in: cora and otto."""
    for company, sites in (("acme", ["borna", "leipzig-ost"]), ("other", ["borna"])):
        body = {"id": company, "name": company.upper(), "sites": sites}
        assert api.put(f"/companies/{company}", json=body, headers=admin).status_code == 200
    add_user(api.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    add_user(api.engine, Role.COMPANY_ADMIN, username="otto", company_id="other")
    return as_user(api, "cora"), as_user(api, "otto")


def person(member: str) -> dict[str, str]:
    return {"id": member, "name": member.title(), "email": f"{member}@example.org"}


def test_a_company_admin_invites_and_lists_their_staff_and_sees_no_other(api):
    admin = add_sites(api)
    cora, otto = companies(api, admin)
    added = api.post("/company/staff", json=person("bob"), headers=cora)
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["created"] is True and body["account"] == "invited"
    assert body["invitation"]["link"] and body["invitation"]["username"] == "bob@example.org"
    token = body["invitation"]["link"].rsplit("/", 1)[1]
    accepted = api.post(f"/auth/invitations/{token}", json={"password": "bob's own password"})
    assert accepted.status_code == 200
    api.post("/company/staff", json=person("beth"), headers=cora)
    listed = api.get("/company/staff", headers=cora).json()
    assert [(s["id"], s["account"], s["allowance"]) for s in listed] == [
        ("beth", "invited", None), ("bob", "active", None),
    ]  # fmt: skip
    [after_beth] = api.get("/company/staff", params={"after": "beth"}, headers=cora).json()
    assert after_beth["id"] == "bob"
    assert api.get("/company/staff/bob", headers=cora).json()["email"] == "bob@example.org"
    # Again: a new invitation for someone on the staff already.
    again = api.post("/company/staff", json=person("beth"), headers=cora)
    assert again.status_code == 200 and again.json()["created"] is False
    # Not for bob, who has set his password: the link (shown to cora, the hub sends no mail)
    # would let her sign in as him and read his entry times. Only a network admin resets.
    taken = api.post("/company/staff", json=person("bob"), headers=cora)
    assert taken.status_code == 409 and "network admin" in taken.json()["detail"]
    assert api.post("/members/bob/invitation", headers=admin).status_code == 201
    # The other company sees none of it, and cannot take anyone of ACME's.
    assert api.get("/company/staff", headers=otto).json() == []
    for method, path, json in (
        ("GET", "/company/staff/bob", None),
        ("DELETE", "/company/staff/bob", None),
        ("PUT", "/company/staff/bob/allowance", {"days_per_month": 3}),
    ):
        refused = api.request(method, path, json=json, headers=otto)
        assert refused.status_code == 404 and refused.json()["detail"] == (
            "no member 'bob' on your staff"
        )
    taken = api.post("/company/staff", json=person("bob"), headers=otto)
    assert taken.status_code == 409 and "choose another id" in taken.json()["detail"]
    # A member of the network who is on nobody's staff is not the employer's to take.
    api.post("/members", json={"id": "nina", "name": "Nina"}, headers=admin)
    assert api.post("/company/staff", json=person("nina"), headers=cora).status_code == 409
    with api.engine.connect() as conn:
        nina = select(db.members.c.company_id).where(db.members.c.id == "nina")
        assert conn.scalar(nina) is None
    # Staff, members and technicians do not reach the company's routes.
    for who in ("nadia", "olga", "tim"):
        assert api.get("/company/staff", headers=as_user(api, who)).status_code == 403
    bob = as_user(api, "bob@example.org", "bob's own password")
    assert api.get("/company/staff", headers=bob).status_code == 403


def test_an_allowance_names_only_the_companys_sites(api):
    admin = add_sites(api)
    api.post("/sites", json={"id": "weimar", "name": "Weimar"}, headers=admin)
    cora, _ = companies(api, admin)
    api.post("/company/staff", json=person("bob"), headers=cora)
    path = "/company/staff/bob/allowance"
    outside = api.put(path, json={"sites": ["borna", "weimar"]}, headers=cora)
    assert outside.status_code == 422
    assert outside.json()["detail"] == (
        "sites: 'weimar' is not one of your company's sites (borna, leipzig-ost)"
    )
    bad_bodies = [{"days_per_month": 32}, {"days_per_month": -1}, {"sites": ["Not A Site"]}]
    bad_bodies += [{"sites": ["borna"] * 1001}, {"hours": 3}]
    for bad in bad_bodies:
        assert api.put(path, json=bad, headers=cora).status_code == 422, bad
    assert api.get("/company/staff/bob", headers=cora).json()["allowance"] is None  # unchanged
    both = {"days_per_month": 8, "sites": ["leipzig-ost", "borna"]}
    set_ = api.put(path, json=both, headers=cora)
    assert set_.json() == {"days_per_month": 8, "sites": ["borna", "leipzig-ost"]}
    assert api.get("/company/staff/bob", headers=cora).json()["allowance"] == set_.json()
    assert api.put(path, json={"days_per_month": 0}, headers=cora).json()["sites"] is None
    assert api.put(path, json={}, headers=cora).json() == {"days_per_month": None, "sites": None}
    assert api.get("/company/staff/bob", headers=cora).json()["allowance"] is None
    with api.engine.connect() as conn:
        assert conn.execute(select(db.allowances)).all() == []


def desk(day) -> dict[str, str]:
    return {"site": "borna", "kind": "desk", "day": day.isoformat(), "part": "day"}


def test_taking_someone_off_the_staff_cancels_what_the_company_paid_for_and_tells_them(
    mail_api,
):
    api, inbox = mail_api
    admin = add_sites(api)
    set_site(api.engine, "borna", desks=3)
    assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
    bob = member_user(api, "bob", admin, plan="flex", email="bob@example.org")
    cora, _ = companies(api, admin)
    day = today() + timedelta(days=2)
    # Before he joins, on his own plan: his, whatever happens to his employment.
    private = api.post("/me/bookings", json=desk(day), headers=bob)
    assert private.status_code == 201, private.text
    joined = api.put("/members/bob/company", json={"company": "acme"}, headers=admin)
    assert joined.status_code == 200, joined.text
    # On ACME's allowance: the one he books himself as much as the one cora books for him.
    own = api.post("/me/bookings", json=desk(day + timedelta(days=1)), headers=bob)
    for_him = api.post(
        "/company/bookings", json=desk(day + timedelta(days=2)) | {"member": "bob"}, headers=cora
    )
    assert own.status_code == 201 and for_him.status_code == 201, (own.text, for_him.text)

    removed = api.delete("/company/staff/bob", headers=cora)
    assert removed.json() == {"member": "bob", "cancelled_bookings": 2}
    listed = api.get("/me/bookings", params={"cancelled": True}, headers=bob).json()
    ids = {
        "private": private.json()["id"],
        "own": own.json()["id"],
        "for_him": for_him.json()["id"],
    }
    states = {name: next(b["state"] for b in listed if b["id"] == id_) for name, id_ in ids.items()}
    assert states == {"private": "booked", "own": "cancelled", "for_him": "cancelled"}
    with api.engine.connect() as conn:
        assert set(conn.scalars(select(db.grants.c.booking_id))) == {ids["private"], None}

    def cancellations() -> list[str]:
        return [
            inbox.text(i)
            for i, m in enumerate(inbox.messages)
            if m["Subject"].startswith("Buchung storniert / Booking cancelled")
        ]

    assert wait_for(lambda: len(cancellations()) == 2, 10)
    told = cancellations()
    for id_ in (ids["own"], ids["for_him"]):
        assert any(f"your booking {id_} " in text for text in told)
    assert all("no longer on the staff of acme" in text for text in told)


@pytest.mark.slow
def test_taking_someone_off_the_staff_ends_their_access_at_the_door_at_once(
    tmp_path, network_api, mock_pins
):
    hub, api = network_api
    admin = dict(api.headers)
    add_sites(api)
    api.post("/plans", json={"id": "flex"})
    company = {"id": "acme", "name": "ACME", "plan": "flex", "sites": ["leipzig-ost"]}
    assert api.put("/companies/acme", json=company).status_code == 200
    cora_id = add_user(hub.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    cora = as_user(api, cora_id)
    assert api.post("/company/staff", json=person("bob"), headers=cora).status_code == 201
    assert api.post("/members/bob/cards", json={"uid": BOB_CARD}, headers=admin).is_success
    with connected_edge(tmp_path, hub) as (agent, card):
        assert wait_for(lambda: acl_version(agent) >= 1, 10)
        card.present(bytes.fromhex(BOB_CARD))
        assert wait_for(lambda: len(door_decisions(hub)) == 1, 10)
        assert door_decisions(hub)[0]["allowed"] is True
        api.put("/company/staff/bob/allowance", json={"days_per_month": 4}, headers=cora)
        company_booking = book_ahead(hub.engine, "bob", "cora", "acme")
        own_booking = book_ahead(hub.engine, "bob", None, None)
        version = acl_version(agent)
        removed = api.delete("/company/staff/bob", headers=cora)
        assert removed.json() == {"member": "bob", "cancelled_bookings": 1}
        assert wait_for(lambda: acl_version(agent) == version + 1, 10)
        tap_again(card, BOB_CARD)
        assert wait_for(lambda: len(door_decisions(hub)) == 2, 10)
        assert door_decisions(hub)[1]["allowed"] is False
    assert api.get("/company/staff", headers=cora).json() == []
    assert api.delete("/company/staff/bob", headers=cora).status_code == 404
    with hub.engine.connect() as conn:
        assert conn.execute(select(db.allowances)).all() == []
        cancelled = dict(conn.execute(select(db.bookings.c.id, db.bookings.c.cancelled_at)).all())
        assert cancelled[company_booking] is not None and cancelled[own_booking] is None
        grants = set(conn.scalars(select(db.grants.c.booking_id)))
        assert company_booking not in grants and own_booking in grants


def book_ahead(engine, member: str, booked_by: str | None, company: str | None) -> int:
    """A booking at Borna tomorrow, made by the user ``booked_by`` (None: by the member)
    within ``company``'s allowance (None: the member's own), with the grant a booking
    gives, as hub.services.bookings stores them."""
    start = datetime.now(UTC) + timedelta(days=1)
    with engine.begin() as conn:
        user = conn.scalar(select(db.users.c.id).where(db.users.c.username == booked_by))
        booking = conn.execute(
            insert(db.bookings)
            .returning(db.bookings.c.id)
            .values(
                member_id=member,
                site_id="borna",
                kind="desk",
                starts_at=start,
                ends_at=start + timedelta(hours=8),
                created_at=datetime.now(UTC),
                day=start.date(),
                part="day",
                booked_by=user,
                company_id=company,
            )
        ).scalar_one()
        conn.execute(
            insert(db.grants).values(
                member_id=member,
                source="booking",
                booking_id=booking,
                sites=["borna"],
                valid_from=start,
                valid_until=start + timedelta(hours=8),
            )
        )
    return booking
