"""A site's booking settings and rooms (issue 16): set when it is made, changed with PATCH by a
network admin (anything but the id) or the site's operator (its booking settings), read back
as set; bad values are 422 naming the field and change nothing; a change that bookings still
to come would not fit is a 409 naming them. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from hub import db
from tests.support.hub import as_user
from tests.support.sites import add_sites

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
    assert f"more than 2 are booked on {day.isoformat()} (3): keep at least 3" in fewer.text
    assert api.patch("/sites/borna", json={"desks": 3}, headers=admin).is_success
    none = api.patch("/sites/borna", json={"desks": None}, headers=admin)
    assert none.status_code == 409 and day.isoformat() in none.text
    closing = api.patch("/sites/borna", json={"closed_days": [day.isoformat()]}, headers=admin)
    assert closing.status_code == 409
    assert f"bookings are made for {day.isoformat()} (4)" in closing.text
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
    assert "room 'saal': 2 bookings still to come hold it" in refused.text
    smaller = api.put("/sites/borna/rooms/saal", json={"name": "Saal", "seats": 7}, headers=admin)
    assert smaller.status_code == 409 and "brings 8 people" in smaller.text
    assert api.get("/sites/borna/rooms", headers=admin).json()[0]["seats"] == 10
