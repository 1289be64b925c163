"""Who books for whom, on SQLite and PostgreSQL: a member only for themselves (another's
booking does not exist for them), a company admin only for their company's staff and within
its allowance, the staff for anyone; members and company admins cancel until the site's
cut-off, the staff at any time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from hub import db
from hub.auth import Role
from tests.support.booking import BERLIN, member_user, set_site, today
from tests.support.hub import add_user, as_user
from tests.support.sites import add_sites


@pytest.fixture
def network(api):
    """Both sites always open with 5 desks; mia and ole on the network-wide plan. Returns
    (nadia's header, mia's, ole's)."""
    admin = add_sites(api)
    for site in ("borna", "leipzig-ost"):
        set_site(api.engine, site, desks=5)
    assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
    mia = member_user(api, "mia", admin, plan="flex")
    ole = member_user(api, "ole", admin, plan="flex")
    return admin, mia, ole


def desk(day, site="borna", **more) -> dict:
    return {"site": site, "kind": "desk", "day": day.isoformat()} | more


def test_a_member_sees_and_cancels_only_their_own_bookings(api, network):
    admin, mia, ole = network
    day = today() + timedelta(days=2)
    theirs = api.post("/me/bookings", json=desk(day), headers=ole).json()
    mine = api.post("/me/bookings", json=desk(day), headers=mia).json()
    for method in ("get", "delete"):
        answer = api.request(method, f"/me/bookings/{theirs['id']}", headers=mia)
        assert answer.status_code == 404 and answer.json()["detail"] == "no such booking"
    assert api.get(f"/me/bookings/{theirs['id']}", headers=ole).json() == theirs  # untouched
    assert [b["id"] for b in api.get("/me/bookings", headers=mia).json()] == [mine["id"]]
    # Booking for someone else is not a member's to do, nor are the staff's endpoints.
    for_ole = api.post("/me/bookings", json=desk(day) | {"member": "ole"}, headers=mia)
    assert for_ole.status_code == 422 and "member" in for_ole.text
    staff = api.post("/sites/borna/bookings", json={"member": "ole", **desk(day)}, headers=mia)
    assert staff.status_code == 403
    assert (
        api.post("/company/bookings", json=desk(day) | {"member": "ole"}, headers=mia).status_code
        == 403
    )
    # And a member's endpoints are not the staff's.
    assert api.get("/me/bookings", headers=admin).status_code == 403


def test_a_member_cancels_until_the_cut_off_and_the_staff_at_any_time(api, network):
    admin, mia, _ole = network
    set_site(api.engine, "borna", cancel_minutes=90)
    later = api.post("/me/bookings", json=desk(today() + timedelta(days=2)), headers=mia).json()
    now = api.post("/me/bookings", json=desk(today()), headers=mia).json()  # began at 00:00
    cancelled = api.delete(f"/me/bookings/{later['id']}", headers=mia)
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
    assert api.delete(f"/me/bookings/{later['id']}", headers=mia).json() == cancelled.json()
    too_late = api.delete(f"/me/bookings/{now['id']}", headers=mia)
    assert too_late.status_code == 409
    deadline = datetime.fromisoformat(now["starts_at"]) - timedelta(minutes=90)
    assert too_late.json()["detail"] == (
        "a booking at borna can be cancelled until 90 minutes before it starts"
        f" ({deadline.astimezone(BERLIN):%Y-%m-%d %H:%M}); ask the space's operator"
    )
    assert api.delete(f"/bookings/{now['id']}", headers=admin).json()["cancelled"] is True
    with api.engine.connect() as conn:
        assert conn.execute(select(db.grants).where(db.grants.c.source == "booking")).all() == []
    # Upcoming lists what still holds; cancelled ones on request.
    assert api.get("/me/bookings", headers=mia).json() == []
    shown = api.get("/me/bookings", params={"cancelled": True}, headers=mia).json()
    assert {b["id"] for b in shown} == {later["id"], now["id"]}


def test_past_bookings_are_listed_latest_first(api, network):
    _admin, mia, _ole = network
    with api.engine.begin() as conn:
        for days_ago in (3, 1, 2):
            start = datetime.now(UTC) - timedelta(days=days_ago)
            conn.execute(
                insert(db.bookings).values(
                    member_id="mia",
                    site_id="borna",
                    kind="desk",
                    starts_at=start,
                    ends_at=start + timedelta(hours=8),
                    created_at=start,
                    day=start.date(),
                    part="day",
                )
            )
    past = api.get("/me/bookings", params={"when": "past"}, headers=mia).json()
    assert [b["starts_at"] for b in past] == sorted((b["starts_at"] for b in past), reverse=True)
    assert len(past) == 3
    assert api.get("/me/bookings", params={"when": "soon"}, headers=mia).status_code == 422


@pytest.fixture
def acme(api, network):
    """Acme allows its staff one desk day a month at both sites; tom has his own allowance
    (two days, Borna alone). cora looks after Acme; bea is another company's. Returns cora's
    header."""
    admin, _mia, _ole = network
    for company, sites in (("acme", ["borna", "leipzig-ost"]), ("other", ["borna"])):
        body = {"id": company, "name": company.title(), "sites": sites, "days_per_person": 1}
        assert api.put(f"/companies/{company}", json=body, headers=admin).is_success
    for name in ("sam", "tom"):
        member_user(api, name, admin, company="acme")
    member_user(api, "bea", admin, company="other")
    with api.engine.begin() as conn:
        conn.execute(
            insert(db.allowances).values(
                member_id="tom",
                days_per_month=2,
                sites=["borna", "grimma"],  # grimma: a site acme does not book
                updated_at=datetime.now(UTC),
            )
        )
    return as_user(
        api, add_user(api.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    )


def month_days(count: int) -> list:
    """``count`` days from tomorrow on, in one month."""
    first = today() + timedelta(days=1)
    if (first + timedelta(days=count)).month != first.month:
        first = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=i) for i in range(count)]


def test_a_company_admin_books_for_their_staff_within_its_allowance(api, network, acme):
    cora = acme
    d1, d2, d3 = month_days(3)
    book = lambda member, day, site="borna": api.post(  # noqa: E731
        "/company/bookings", json=desk(day, site) | {"member": member}, headers=cora
    )
    made = book("sam", d1)
    assert made.status_code == 201 and made.json()["member"] == "sam"
    used = book("sam", d2)
    assert used.status_code == 409
    assert used.json()["detail"] == (
        f"sam has used 1 of 1 desk day of {d2:%B %Y} (acme's allowance; a half day counts as a"
        f" day); book again from {(d2.replace(day=28) + timedelta(days=4)).replace(day=1)} or"
        " cancel another day"
    )
    # Acme books both sites; the same day elsewhere costs no second day.
    assert book("sam", d1, "leipzig-ost").status_code == 201
    # tom's own allowance: two days, at Borna alone (his own sites narrow acme's).
    elsewhere = book("tom", d1, "leipzig-ost")
    assert elsewhere.status_code == 422
    assert elsewhere.json()["detail"] == (
        "acme's allowance does not include leipzig-ost; it includes borna"
    )
    assert book("tom", d1).status_code == 201
    assert book("tom", d2).status_code == 201
    assert book("tom", d3).status_code == 409
    # Nobody else's: not another company's staff, not a member of no company.
    for stranger in ("bea", "mia", "nobody"):
        answer = book(stranger, d1)
        assert answer.status_code == 404
        assert answer.json()["detail"] == f"no member {stranger!r} on your company's staff"


def test_a_company_admin_sees_and_cancels_their_staffs_bookings_only(api, network, acme):
    _admin, mia, _ole = network
    cora = acme
    d1, _d2 = month_days(2)
    sams = api.post("/company/bookings", json=desk(d1) | {"member": "sam"}, headers=cora).json()
    mias = api.post("/me/bookings", json=desk(d1), headers=mia).json()
    month = f"{d1:%Y-%m}"
    seen = api.get("/company/bookings", params={"month": month}, headers=cora).json()
    assert [b["id"] for b in seen] == [sams["id"]]
    assert "arrived_at" not in seen[0]  # the days booked, never when anyone came in
    assert api.get(f"/company/bookings/{mias['id']}", headers=cora).status_code == 404
    assert api.delete(f"/company/bookings/{mias['id']}", headers=cora).status_code == 404
    cancelled = api.delete(f"/company/bookings/{sams['id']}", headers=cora)
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
    for bad in ("2026-13", "26-01", "२०२६-०१"):
        answer = api.get("/company/bookings", params={"month": bad}, headers=cora)
        assert answer.status_code == 422, bad
    # A company admin who is no member books nothing for themselves.
    assert api.get("/me/bookings", headers=cora).status_code == 403
    assert api.get("/company/bookings", params={"month": month}, headers=mia).status_code == 403


def test_a_company_admin_learns_whether_a_booking_was_used_only_once_it_is_over(api, network, acme):
    """While a booking runs its state stays "booked" for the employer: "arrived" the minute
    the card opened the door (or "released" the minute nobody had) would tell, to an admin
    asking every minute, when the person came in."""
    cora = acme
    now = datetime.now(UTC)
    day = today()
    ids = {}
    with api.engine.begin() as conn:
        for member, arrived, released in (("sam", True, False), ("tom", False, True)):
            ids[member] = conn.execute(
                insert(db.bookings).values(
                    member_id=member, site_id="borna", kind="desk", part="day", day=day,
                    starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=2),
                    created_at=now - timedelta(days=1), company_id="acme",
                    arrived_at=now - timedelta(minutes=7) if arrived else None,
                    released_at=now - timedelta(minutes=1) if released else None,
                ).returning(db.bookings.c.id)
            ).scalar_one()  # fmt: skip
    running = api.get("/company/bookings", params={"month": f"{day:%Y-%m}"}, headers=cora)
    one = [api.get(f"/company/bookings/{i}", headers=cora).json() for i in ids.values()]
    for seen in running.json() + one:
        assert (seen["state"], seen["released"], seen["released_at"]) == ("booked", False, None)
    with api.engine.begin() as conn:  # over: now whether it was used may be said
        b = db.bookings.c
        conn.execute(db.bookings.update().values(ends_at=now - timedelta(minutes=1)))
        assert conn.scalar(select(b.arrived_at).where(b.id == ids["sam"])) is not None
    over = api.get("/company/bookings", params={"month": f"{day:%Y-%m}"}, headers=cora).json()
    assert sorted((b["member"], b["state"]) for b in over) == [
        ("sam", "arrived"), ("tom", "released"),
    ]  # fmt: skip
