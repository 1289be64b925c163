"""Booking through the API, on SQLite and PostgreSQL: every rule refuses with a message that
names it and what would work, and a refusal changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub import db
from tests.support.booking import (
    WEEKDAYS,
    add_room,
    at,
    member_user,
    next_weekday,
    set_site,
    today,
)
from tests.support.sites import add_sites

THURSDAY = 3


@pytest.fixture
def borna(api):
    """Borna open Mon–Fri 08:00–18:00 with 2 desks and a room for 4; mia on the network-wide
    plan. Returns (nadia's header, mia's header)."""
    admin = add_sites(api)
    hours = [{"days": WEEKDAYS, "start": "08:00", "end": "18:00"}]
    set_site(api.engine, "borna", desks=2, opening_hours=hours)
    add_room(api.engine, "borna", "werkstatt", 4)
    assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
    return admin, member_user(api, "mia", admin, plan="flex")


def desk(day, part="day", site="borna") -> dict:
    return {"site": site, "kind": "desk", "day": day.isoformat(), "part": part}


def refused(answer, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"] == message


parse = datetime.fromisoformat


def bookings_made(api) -> int:
    with api.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(db.bookings))


def test_a_member_books_a_desk_for_a_part_of_a_day_within_the_sites_hours(api, borna):
    _admin, mia = borna
    thursday = next_weekday(THURSDAY)
    made = api.post("/me/bookings", json=desk(thursday, "afternoon"), headers=mia)
    assert made.status_code == 201, made.text
    booking = made.json()
    starts, ends = (datetime.fromisoformat(booking[k]) for k in ("starts_at", "ends_at"))
    assert (starts, ends) == (parse(at(thursday, "13:00")), parse(at(thursday, "18:00")))
    assert booking == {
        "id": booking["id"],
        "site": "borna",
        "member": "mia",
        "kind": "desk",
        "day": thursday.isoformat(),
        "part": "afternoon",
        "room": None,
        "attendees": None,
        "starts_at": booking["starts_at"],
        "ends_at": booking["ends_at"],
        "cancelled": False,
        "released": False,
        "state": "booked",
        "cancelled_at": None,
        "released_at": None,
    }
    assert api.get(f"/me/bookings/{booking['id']}", headers=mia).json() == booking
    assert api.get("/me/bookings", headers=mia).json() == [booking]
    with api.engine.connect() as conn:
        grant = conn.execute(select(db.grants).where(db.grants.c.booking_id == booking["id"])).one()
        row = conn.execute(select(db.bookings)).one()
    assert (grant.sites, db.aware(grant.valid_from), db.aware(grant.valid_until)) == (
        ["borna"],
        starts,
        ends,
    )
    assert row.booked_by is not None


def test_each_rule_of_when_refuses_with_what_would_work(api, borna):
    _admin, mia = borna
    saturday = next_weekday(5)
    refused(
        api.post("/me/bookings", json=desk(saturday), headers=mia),
        422,
        "borna is closed on Saturdays; open Mon–Fri",
    )
    refused(
        api.post("/me/bookings", json={**desk(saturday), "day": "2020-03-02"}, headers=mia),
        422,
        f"2020-03-02 is over; book {today()} or a later day",
    )
    far = next_weekday(THURSDAY, after=70)
    answer = api.post("/me/bookings", json=desk(far), headers=mia)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("borna takes bookings up to 60 days ahead: until ")
    thursday = next_weekday(THURSDAY)
    set_site(api.engine, "borna", closed_days=[thursday.isoformat()])
    refused(
        api.post("/me/bookings", json=desk(thursday), headers=mia),
        422,
        f"borna is closed on {thursday}; the next open day is {thursday + timedelta(days=1)}",
    )
    refused(
        api.post("/me/bookings", json=desk(thursday, site="leipzig-ost"), headers=mia),
        422,
        "leipzig-ost has no desks to book; try another space of the network",
    )
    assert bookings_made(api) == 0


def test_no_desk_left_is_409_with_the_other_half_and_the_waiting_list(api, borna):
    admin, mia = borna
    thursday = next_weekday(THURSDAY)
    others = [member_user(api, name, admin, plan="flex") for name in ("ole", "pia")]
    for header in others:
        assert api.post("/me/bookings", json=desk(thursday, "morning"), headers=header).is_success
    refused(
        api.post("/me/bookings", json=desk(thursday, "morning"), headers=mia),
        409,
        f"no desk left at borna on {thursday} (morning); join the waiting list or book the"
        " afternoon (2 left)",
    )
    refused(
        api.post("/me/bookings", json=desk(thursday), headers=mia),
        409,
        f"no desk left at borna on {thursday} (day); join the waiting list or book the"
        " afternoon (2 left)",
    )
    assert api.post("/me/bookings", json=desk(thursday, "afternoon"), headers=mia).is_success
    # An operator's day guest takes a desk too: the afternoon has one left, the guest none.
    api.post("/members", json={"id": "gast", "name": "Gast"}, headers=admin)
    guest = {"member": "gast", "starts_at": at(thursday, "09:00"), "ends_at": at(thursday, "17:00")}
    full = api.post("/sites/borna/bookings", json=guest, headers=admin)
    assert full.status_code == 409 and full.json()["detail"].startswith("no desk left at borna")
    assert bookings_made(api) == 3


def test_a_member_holds_one_desk_per_part_at_a_site(api, borna):
    _admin, mia = borna
    thursday = next_weekday(THURSDAY)
    first = api.post("/me/bookings", json=desk(thursday, "morning"), headers=mia).json()
    refused(
        api.post("/me/bookings", json=desk(thursday), headers=mia),
        409,
        f"you already have a desk at borna on {thursday} (morning): booking {first['id']};"
        " cancel it to book another part",
    )
    assert api.post("/me/bookings", json=desk(thursday, "afternoon"), headers=mia).is_success


def test_a_room_for_quarter_hours_within_its_seats_and_free_time(api, borna):
    admin, mia = borna
    thursday = next_weekday(THURSDAY)

    def room(start: str, end: str, **more) -> dict:
        return {
            "site": "borna",
            "kind": "room",
            "room": "werkstatt",
            "starts_at": at(thursday, start),
            "ends_at": at(thursday, end),
        } | more

    made = api.post("/me/bookings", json=room("10:00", "12:00", attendees=4), headers=mia)
    assert made.status_code == 201, made.text
    assert (made.json()["room"], made.json()["attendees"], made.json()["part"]) == (
        "werkstatt",
        4,
        None,
    )
    ole = member_user(api, "ole", admin, plan="flex")
    refused(
        api.post("/me/bookings", json=room("11:30", "13:00"), headers=ole),
        409,
        f"werkstatt at borna is booked 10:00–12:00 on {thursday}; free that day: 08:00–10:00,"
        " 12:00–18:00",
    )
    assert api.post("/me/bookings", json=room("12:00", "13:00"), headers=ole).is_success
    refused(
        api.post("/me/bookings", json=room("14:00", "15:00", attendees=5), headers=ole),
        422,
        "werkstatt at borna seats 4: 5 do not fit",
    )
    refused(
        api.post("/me/bookings", json=room("14:05", "15:00"), headers=ole),
        422,
        "rooms are booked in quarter hours (:00, :15, :30, :45): for example 14:00–15:00",
    )
    refused(
        api.post("/me/bookings", json={**room("14:00", "15:00"), "room": "saal"}, headers=ole),
        422,
        "borna has no room 'saal'; its rooms: werkstatt",
    )
    two_days = room("14:00", "15:00") | {"ends_at": at(thursday + timedelta(days=2), "15:00")}
    answer = api.post("/me/bookings", json=two_days, headers=ole)
    assert answer.status_code == 422 and "within one of the site's days" in answer.text


def test_the_kind_of_a_booking_says_which_fields_it_takes(api, borna):
    _admin, mia = borna
    thursday = next_weekday(THURSDAY)
    for body, words in (
        ({"site": "borna", "kind": "desk"}, "give day"),
        ({**desk(thursday), "starts_at": at(thursday, "09:00")}, "not starts_at"),
        ({"site": "borna", "kind": "room", "day": thursday.isoformat()}, "not day or part"),
        ({"site": "borna", "kind": "day", "starts_at": at(thursday, "09:00")}, "kind"),
        ({**desk(thursday), "member": "ole"}, "member"),
        ({**desk(thursday), "part": "evening"}, "part"),
    ):
        answer = api.post("/me/bookings", json=body, headers=mia)
        assert answer.status_code == 422 and words in answer.text, (body, answer.text)
    assert bookings_made(api) == 0


def test_a_plans_desk_days_and_sites_are_its_members_allowance(api, borna):
    admin, _mia = borna
    set_site(api.engine, "leipzig-ost", desks=5)
    plan = {"id": "two-days", "sites": ["borna"], "days_per_month": 2, "access": "booked"}
    assert api.post("/plans", json=plan, headers=admin).status_code == 201
    ida = member_user(api, "ida", admin, plan="two-days")
    first = next_weekday(0, after=1)
    days = [d for d in (first + timedelta(days=i) for i in range(40)) if d.weekday() < 5]
    month = [d for d in days if d.month == days[0].month]
    if len(month) < 3:  # too near the month's end: take the next month's first days
        month = [d for d in days if d.month != days[0].month][:3]
    assert api.post("/me/bookings", json=desk(month[0], "morning"), headers=ida).is_success
    assert api.post("/me/bookings", json=desk(month[1]), headers=ida).is_success
    # The afternoon of a day already held costs nothing more: a half day counts as a day.
    assert api.post("/me/bookings", json=desk(month[0], "afternoon"), headers=ida).is_success
    answer = api.post("/me/bookings", json=desk(month[2]), headers=ida)
    assert answer.status_code == 409
    assert answer.json()["detail"].startswith(
        "you have used 2 of 2 desk days of "
        f"{month[2]:%B %Y} (the plan 'two-days'; a half day counts as a day); book again from "
    )
    refused(
        api.post("/me/bookings", json=desk(month[2], site="leipzig-ost"), headers=ida),
        422,
        "the plan 'two-days' does not include leipzig-ost; it includes borna",
    )
    # The network's staff may book beyond a member's allowance.
    beyond = {"member": "ida", "kind": "desk", "day": month[2].isoformat()}
    assert api.post("/sites/borna/bookings", json=beyond, headers=admin).status_code == 201


def test_a_member_without_a_plan_or_employer_may_not_book(api, borna):
    admin, _mia = borna
    ned = member_user(api, "ned", admin)
    refused(
        api.post("/me/bookings", json=desk(next_weekday(THURSDAY)), headers=ned),
        422,
        "the membership includes no booking (no plan, no employer); ask the network's"
        " management for a plan",
    )


def test_plans_and_companies_keep_allowances_and_read_them_back(api, borna):
    admin, _mia = borna
    plan = {"id": "flex-8", "sites": None, "windows": None, "days_per_month": 8, "access": "booked"}
    assert api.post("/plans", json=plan, headers=admin).json() == plan
    assert api.get("/plans/flex-8", headers=admin).json() == plan
    assert api.get("/plans/flex", headers=admin).json()["access"] == "standing"
    changed = {**plan, "days_per_month": None, "access": "standing"}
    assert api.put("/plans/flex-8", json=changed, headers=admin).json() == changed
    assert api.get("/plans/flex-8", headers=admin).json() == changed
    for bad in ({"days_per_month": 32}, {"days_per_month": -1}, {"access": "sometimes"}):
        answer = api.post("/plans", json={"id": "bad", **bad}, headers=admin)
        assert answer.status_code == 422, answer.text
    company = {"id": "acme", "name": "Acme", "plan": None, "sites": ["borna"], "days_per_person": 4}
    assert api.put("/companies/acme", json=company, headers=admin).json() == company
    assert api.get("/companies/acme", headers=admin).json() == company
    bad = api.put("/companies/acme", json={**company, "days_per_person": 40}, headers=admin)
    assert bad.status_code == 422 and "days_per_person" in bad.text


def test_an_operators_day_guest_keeps_to_the_hours_the_calendar_and_the_desks(api, borna):
    """The old kind of booking (an operator's day guest by its times) under the new rules:
    accepted before were a Saturday at a weekday-only space and a booking in 2020."""
    admin, _mia = borna
    api.post("/members", json={"id": "gast", "name": "Gast"}, headers=admin)
    saturday, thursday = next_weekday(5), next_weekday(THURSDAY)

    def guest(day, start: str, end: str):
        body = {"member": "gast", "starts_at": at(day, start), "ends_at": at(day, end)}
        return api.post("/sites/borna/bookings", json=body, headers=admin)

    refused(guest(saturday, "09:00", "17:00"), 422, "borna is closed on Saturdays; open Mon–Fri")
    past = api.post(
        "/sites/borna/bookings",
        json={
            "member": "gast",
            "starts_at": "2020-03-02T09:00:00+01:00",
            "ends_at": "2020-03-02T17:00:00+01:00",
        },
        headers=admin,
    )
    assert past.status_code == 422 and "is over" in past.json()["detail"]
    refused(
        guest(thursday, "07:00", "17:00"),
        422,
        f"borna is open 08:00–18:00 on Thursdays ({thursday}); book within them (a booking"
        " lies within one day)",
    )
    made = guest(thursday, "08:00", "18:00")
    assert made.status_code == 201 and made.json()["day"] == thursday.isoformat()
    assert bookings_made(api) == 1
