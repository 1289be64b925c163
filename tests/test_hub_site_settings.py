"""A site's booking settings and rooms (issue 16): set when it is made, changed with PATCH by a
network admin (anything but the id) or the site's operator (its booking settings), read back
as set; bad values are 422 naming the field and change nothing; a change that bookings still
to come would not fit is a 409 saying how many, unless the caller asks to cancel them: then
they are cancelled, their grants go and their members are told by mail (the latest made of a
day first where desks are cut). On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select

from hub import db
from tests.support.booking import at, member_user, next_weekday, set_site
from tests.support.hub import as_user
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

PLACE = {
    "latitude": 51.1167,
    "longitude": 12.4969,
    "address": "Markt 1, 04552 Borna",
    "capacity": 20,
    "desks": 12,
    "opening_hours": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
    ],
    "closed_days": ["2026-12-31", "2026-12-24", "2026-12-24"],
    "horizon_days": 90,
    "cancel_minutes": 120,
    "grace_minutes": 30,
}


def book(engine, site: str, day: date, part: str = "day", kind: str = "desk", **more) -> None:
    """A booking put straight into the store (the booking API is another part of issue 16)."""
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=8)
    with engine.begin() as conn:
        conn.execute(
            insert(db.bookings).values(
                member_id="anna",
                site_id=site,
                kind=kind,
                starts_at=start,
                ends_at=start + timedelta(hours=10),
                created_at=datetime.now(UTC),
                day=day,
                part=part,
                **more,
            )
        )


def soon(days: int = 7) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


def test_booking_settings_round_trip_and_defaults(api):
    admin = add_sites(api)  # leipzig-ost, borna: made without any booking settings
    plain = api.get("/sites/leipzig-ost", headers=admin).json()
    assert plain["desks"] is None and plain["latitude"] is None and plain["closed_days"] is None
    assert (plain["horizon_days"], plain["cancel_minutes"], plain["grace_minutes"]) == (60, 60, 60)

    changed = api.patch("/sites/borna", json=PLACE, headers=admin)
    assert changed.status_code == 200, changed.text
    read = api.get("/sites/borna", headers=admin).json()
    assert read == changed.json()
    assert read["closed_days"] == ["2026-12-24", "2026-12-31"]  # in order, once each
    assert read["opening_hours"][0]["days"] == [0, 1, 2, 3, 4]
    assert {k: read[k] for k in ("latitude", "desks", "horizon_days", "grace_minutes")} == {
        "latitude": 51.1167,
        "desks": 12,
        "horizon_days": 90,
        "grace_minutes": 30,
    }
    assert read["name"] == "Borna"  # left as it was

    made = api.post("/sites", json={"id": "wurzen", "name": "Wurzen", **PLACE}, headers=admin)
    assert made.status_code == 201, made.text
    assert api.get("/sites/wurzen", headers=admin).json()["address"] == PLACE["address"]

    cleared = api.patch("/sites/borna", json={"closed_days": None, "desks": None}, headers=admin)
    assert cleared.json()["closed_days"] is None and cleared.json()["desks"] is None


#: Changes that are refused, and what the answer names.
BAD_SETTINGS = [
    ({"latitude": 91, "longitude": 12}, "latitude"),
    ({"longitude": None}, "latitude and longitude: give both"),
    ({"longitude": -181, "latitude": 0}, "longitude"),
    ({"closed_days": ["24.12.2026"]}, "not a day written YYYY-MM-DD"),
    ({"closed_days": [20261224]}, "closed_days"),
    ({"closed_days": ["2026-12-24"] * 401}, "closed_days"),
    ({"desks": 25}, "desks: 25 is more than the site's capacity of 20"),
    ({"capacity": 10}, "desks: 12 is more than the site's capacity of 10"),
    ({"desks": -1}, "desks"),
    ({"horizon_days": 0}, "horizon_days"),
    ({"cancel_minutes": 10_081}, "cancel_minutes"),
    ({"grace_minutes": 4}, "grace_minutes"),
    ({"address": "x" * 301}, "address"),
    ({"horizon_days": None}, "horizon_days: cannot be null"),
    ({"id": "elsewhere"}, "a site's id cannot change"),
    ({"colour": "blue"}, "colour"),
]


def test_bad_settings_are_422_naming_the_field_and_change_nothing(api):
    admin = add_sites(api)
    assert api.patch("/sites/borna", json=PLACE, headers=admin).is_success
    before = api.get("/sites/borna", headers=admin).json()
    for patch, field in BAD_SETTINGS:
        refused = api.patch("/sites/borna", json=patch, headers=admin)
        assert refused.status_code == 422, (patch, refused.text)
        assert field in refused.text, patch
    assert api.get("/sites/borna", headers=admin).json() == before


def test_an_operator_sets_booking_settings_of_their_own_sites_only(api):
    admin = add_sites(api)
    olga = as_user(api, "olga")  # operator of leipzig-ost
    rules = {"desks": 8, "closed_days": ["2026-12-24"], "grace_minutes": 15}
    assert api.patch("/sites/leipzig-ost", json=rules, headers=olga).json()["desks"] == 8
    # Another operator's site does not exist for her; where a site is is the admin's.
    assert api.patch("/sites/borna", json={"desks": 8}, headers=olga).status_code == 404
    moved = api.patch(
        "/sites/leipzig-ost", json={"latitude": 51.3, "longitude": 12.4}, headers=olga
    )
    assert moved.status_code == 403 and "latitude, longitude: ask a network admin" in moved.text
    renamed = api.patch("/sites/leipzig-ost", json={"timezone": "UTC"}, headers=olga)
    assert renamed.status_code == 403
    tim = as_user(api, "tim")  # technicians look after devices, not bookings
    assert api.patch("/sites/borna", json={"desks": 3}, headers=tim).status_code == 403
    assert api.get("/sites/leipzig-ost", headers=admin).json()["latitude"] is None


def test_fewer_desks_than_booked_or_a_booked_closed_day_is_409_naming_the_day(api):
    admin = add_sites(api)
    assert api.patch("/sites/borna", json={"desks": 4}, headers=admin).is_success
    day = soon()
    for part in ("day", "day", "morning", "afternoon"):
        book(api.engine, "borna", day, part)
    book(api.engine, "borna", day - timedelta(days=30), "day")  # past: no matter
    # Three desks in each half: three are enough, two are not.
    fewer = api.patch("/sites/borna", json={"desks": 2}, headers=admin)
    assert fewer.status_code == 409
    # The latest made go first, each where it helps: the afternoon, then the morning.
    assert "affects 2 bookings not over yet: 2 bookings would take more than its 2" in fewer.text
    assert f"the latest made on {day.isoformat()} (2)" in fewer.text
    assert api.patch("/sites/borna", json={"desks": 3}, headers=admin).is_success
    none = api.patch("/sites/borna", json={"desks": None}, headers=admin)
    assert none.status_code == 409 and day.isoformat() in none.text
    closing = api.patch("/sites/borna", json={"closed_days": [day.isoformat()]}, headers=admin)
    assert closing.status_code == 409
    assert "this change affects 4 bookings not over yet: 4 bookings would lie outside" in (
        closing.text
    )
    site = api.get("/sites/borna", headers=admin).json()
    assert site["desks"] == 3 and site["closed_days"] is None


def test_rooms_are_added_changed_listed_and_removed(api):
    admin = add_sites(api)
    olga = as_user(api, "olga")
    added = api.put(
        "/sites/leipzig-ost/rooms/saal", json={"name": "Saal", "seats": 12}, headers=olga
    )
    assert added.status_code == 201
    assert added.json() == {"id": "saal", "name": "Saal", "seats": 12}
    again = api.put(
        "/sites/leipzig-ost/rooms/saal", json={"name": "Großer Saal", "seats": 14}, headers=olga
    )
    assert again.status_code == 200
    api.put("/sites/leipzig-ost/rooms/kabine", json={"name": "Kabine", "seats": 1}, headers=admin)
    listed = api.get("/sites/leipzig-ost/rooms", headers=olga).json()
    assert listed == [
        {"id": "kabine", "name": "Kabine", "seats": 1},
        {"id": "saal", "name": "Großer Saal", "seats": 14},
    ]
    assert api.delete("/sites/leipzig-ost/rooms/kabine", headers=olga).status_code == 204
    assert api.delete("/sites/leipzig-ost/rooms/kabine", headers=olga).status_code == 404
    assert [r["id"] for r in api.get("/sites/leipzig-ost/rooms", headers=olga).json()] == ["saal"]


#: Rooms that are refused, and what the answer names.
BAD_ROOMS = [
    ("/sites/borna/rooms/saal", {"name": "Saal", "seats": 0}, "seats"),
    ("/sites/borna/rooms/saal", {"name": "Saal", "seats": 501}, "seats"),
    ("/sites/borna/rooms/saal", {"name": "", "seats": 4}, "name"),
    ("/sites/borna/rooms/Saal%20A", {"name": "Saal", "seats": 4}, "room_id"),
    ("/sites/nowhere/rooms/saal", {"name": "Saal", "seats": 4}, "no site 'nowhere'"),
]


def test_bad_rooms_are_refused(api):
    admin = add_sites(api)
    for path, body, field in BAD_ROOMS:
        refused = api.put(path, json=body, headers=admin)
        assert refused.status_code in (404, 422) and field in refused.text, refused.text
    assert api.get("/sites/borna/rooms", headers=admin).json() == []


def test_rooms_of_another_operators_site_are_not_there_and_technicians_may_not_change_them(api):
    admin = add_sites(api)
    api.put("/sites/borna/rooms/saal", json={"name": "Saal", "seats": 4}, headers=admin)
    olga = as_user(api, "olga")
    assert api.get("/sites/borna/rooms", headers=olga).status_code == 404
    assert (
        api.put("/sites/borna/rooms/saal", json={"name": "X", "seats": 4}, headers=olga).status_code
        == 404
    )
    assert api.delete("/sites/borna/rooms/saal", headers=olga).status_code == 404
    tim = as_user(api, "tim")
    assert api.delete("/sites/borna/rooms/saal", headers=tim).status_code == 403


def test_a_room_that_bookings_still_hold_is_not_removed_nor_made_too_small(api):
    admin = add_sites(api)
    api.put("/sites/borna/rooms/saal", json={"name": "Saal", "seats": 10}, headers=admin)
    for attendees in (6, 8):
        book(api.engine, "borna", soon(), "day", kind="room", room_id="saal", attendees=attendees)
    book(api.engine, "borna", soon(-10), "day", kind="room", room_id="saal", attendees=10)
    refused = api.delete("/sites/borna/rooms/saal", headers=admin)
    assert refused.status_code == 409
    assert "room 'saal': removing it affects 2 bookings of it" in refused.text
    smaller = api.put("/sites/borna/rooms/saal", json={"name": "Saal", "seats": 7}, headers=admin)
    assert smaller.status_code == 409
    assert "affect 1 booking of room 'saal' that bring up to 8 people" in smaller.text
    assert api.get("/sites/borna/rooms", headers=admin).json()[0]["seats"] == 10


def test_a_change_that_bookings_no_longer_fit_cancels_them_when_asked_and_tells_them(mail_api):
    api, inbox = mail_api
    admin = add_sites(api)
    hours = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}]
    set_site(api.engine, "borna", desks=3, opening_hours=hours)
    api.put("/sites/borna/rooms/saal", json={"name": "Saal", "seats": 10}, headers=admin)
    assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
    people = {
        name: member_user(api, name, admin, plan="flex", email=f"{name}@example.org")
        for name in ("mia", "ole", "uwe")
    }
    tuesday = next_weekday(1, after=2)
    desk = {"site": "borna", "kind": "desk", "day": tuesday.isoformat(), "part": "day"}
    made = {}
    for name in ("mia", "ole", "uwe"):  # in this order: uwe's is the latest made
        answer = api.post("/me/bookings", json=desk, headers=people[name])
        assert answer.status_code == 201, answer.text
        made[name] = answer.json()["id"]

    def holding() -> set[int]:
        with api.engine.connect() as conn:
            return set(
                conn.scalars(select(db.grants.c.booking_id).where(db.grants.c.source == "booking"))
            )

    refused = api.patch("/sites/borna", json={"desks": 1}, headers=admin)
    assert refused.status_code == 409 and "affects 2 bookings not over yet" in refused.text
    assert holding() == set(made.values())  # refused: nothing changed
    cut = api.patch(
        "/sites/borna", params={"cancel_affected": True}, json={"desks": 1}, headers=admin
    )
    assert cut.status_code == 200 and cut.json()["desks"] == 1
    assert holding() == {made["mia"]}  # the latest made went first
    # Tuesdays closed now: mia's goes too, with the site's zone and hours checked as one.
    monday = [{"days": ["mon"], "start": "08:00", "end": "18:00"}]
    shut = api.patch("/sites/borna", json={"opening_hours": monday}, headers=admin)
    assert shut.status_code == 409 and "affects 1 booking not over yet" in shut.text
    asked = {"cancel_affected": True}
    assert api.patch(
        "/sites/borna", params=asked, json={"opening_hours": monday}, headers=admin
    ).is_success
    assert holding() == set()
    # A room made smaller than a booking brings, then removed.
    monday_day = next_weekday(0, after=2)
    for attendees in (6, 2):
        booked = api.post(
            "/me/bookings",
            json={"site": "borna", "kind": "room", "room": "saal", "attendees": attendees}
            | {
                "starts_at": at(monday_day, f"{8 + attendees}:00"),
                "ends_at": at(monday_day, f"{9 + attendees}:00"),
            },
            headers=people["mia"],
        )
        assert booked.status_code == 201, booked.text
    smaller = {"name": "Saal", "seats": 4}
    assert api.put("/sites/borna/rooms/saal", json=smaller, headers=admin).status_code == 409
    assert api.put("/sites/borna/rooms/saal", params=asked, json=smaller, headers=admin).is_success
    assert len(holding()) == 1
    assert api.delete("/sites/borna/rooms/saal", headers=admin).status_code == 409
    assert api.delete("/sites/borna/rooms/saal", params=asked, headers=admin).status_code == 204
    assert holding() == set()

    def cancellations(address: str) -> list[str]:
        return [
            inbox.text(i)
            for i, m in enumerate(inbox.messages)
            if m["To"] == address and m["Subject"].startswith("Buchung storniert")
        ]

    assert wait_for(lambda: len(cancellations("mia@example.org")) == 3, 10)
    assert len(cancellations("ole@example.org")) == len(cancellations("uwe@example.org")) == 1
    assert (
        "the opening hours, closed days or desks of Borna changed"
        in cancellations("uwe@example.org")[0]
    )
