"""Bookings in the member's own calendar (issue 16): each booking as an ``.ics`` (parsed back
with the icalendar library), and a private, revocable feed URL that calendar apps fetch
without signing in. A member gets only their own; staff have no member calendar. On SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar
from sqlalchemy import insert, update

from hub import db
from hub.auth import Role
from tests.support.hub import add_user, as_user
from tests.support.sites import add_sites

SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


def book(engine, member: str, **values) -> int:
    row = {
        "member_id": member,
        "site_id": "borna",
        "kind": "desk",
        "part": "morning",
        "day": SOON.date(),
        "starts_at": SOON,
        "ends_at": SOON + timedelta(hours=4),
        "created_at": SOON - timedelta(days=3),
        **values,
    }
    with engine.begin() as conn:
        return conn.execute(
            insert(db.bookings).returning(db.bookings.c.id).values(**row)
        ).scalar_one()


def members(api) -> tuple[dict, dict]:
    add_sites(api)
    with api.engine.begin() as conn:
        b = db.sites.c
        conn.execute(
            update(db.sites)
            .where(b.id == "borna")
            .values(
                name="Hafen Borna", address="Markt 1, 04552 Borna", latitude=51.12, longitude=12.5
            )
        )
        conn.execute(insert(db.rooms).values(site_id="borna", id="kajuete", name="Kajüte", seats=6))
    mia = as_user(api, add_user(api.engine, Role.MEMBER, username="mia", member_id="mia"))
    bo = as_user(api, add_user(api.engine, Role.MEMBER, username="bo", member_id="bo"))
    return mia, bo


def events(body: bytes) -> list:
    return Calendar.from_ical(body).walk("VEVENT")


def test_a_booking_downloads_as_an_ics_with_its_time_place_and_uid(api):
    mia, bo = members(api)
    desk = book(api.engine, "mia")
    answer = api.get(f"/me/calendar/bookings/{desk}.ics", headers=mia)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    assert "attachment" in answer.headers["content-disposition"]
    [event] = events(answer.content)
    assert event.decoded("dtstart") == SOON and event.decoded("dtend") == SOON + timedelta(hours=4)
    assert str(event["summary"]) == "Desk at Hafen Borna (morning)"
    assert str(event["location"]) == "Hafen Borna, Markt 1, 04552 Borna"
    assert str(event["uid"]) == f"booking-{desk}@testserver"
    assert str(event["status"]) == "CONFIRMED"
    # another member's booking is none at all to mia; staff have no member calendar
    assert api.get(f"/me/calendar/bookings/{desk}.ics", headers=bo).status_code == 404
    admin = as_user(api, "nadia")
    assert api.get(f"/me/calendar/bookings/{desk}.ics", headers=admin).status_code == 403


def test_the_feed_holds_the_members_bookings_and_ends_when_replaced_or_dropped(api):
    mia, _ = members(api)
    desk = book(api.engine, "mia")
    room = book(api.engine, "mia", kind="room", part=None, room_id="kajuete", attendees=4)
    cancelled = book(api.engine, "mia", cancelled_at=SOON - timedelta(days=1))
    book(api.engine, "bo")  # not in mia's feed
    book(
        api.engine, "mia", starts_at=SOON - timedelta(days=200), ends_at=SOON - timedelta(days=199)
    )
    assert api.get("/me/calendar", headers=mia).json() == {"active": False, "url": None}
    made = api.post("/me/calendar", headers=mia)
    assert made.status_code == 201
    url = made.json()["url"]
    assert url.startswith("http://testserver/calendar/hfc_") and url.endswith(".ics")
    path = url.removeprefix("http://testserver")
    feed = api.get(path)  # no sign-in: a calendar app cannot
    assert feed.status_code == 200 and "private" in feed.headers["cache-control"]
    calendar = Calendar.from_ical(feed.content)
    assert calendar["refresh-interval"].to_ical() in (b"PT1H", "PT1H")
    by_uid = {str(e["uid"]).split("@")[0]: e for e in calendar.walk("VEVENT")}
    assert set(by_uid) == {f"booking-{b}" for b in (desk, room, cancelled)}  # not the old one
    assert str(by_uid[f"booking-{room}"]["summary"]) == "Kajüte at Hafen Borna"
    assert str(by_uid[f"booking-{cancelled}"]["status"]) == "CANCELLED"
    assert by_uid[f"booking-{cancelled}"]["sequence"] == 1

    again = api.post("/me/calendar", headers=mia).json()["url"]
    assert api.get(path).status_code == 404  # the old URL ends with the new one
    assert api.get(again.removeprefix("http://testserver")).status_code == 200
    assert api.delete("/me/calendar", headers=mia).status_code == 204
    assert api.get(again.removeprefix("http://testserver")).status_code == 404
    assert api.get("/me/calendar", headers=mia).json()["active"] is False


def test_made_up_feed_tokens_find_nothing(api):
    members(api)
    for token in ("hfc_" + "a" * 43, "nothing", "hfc_" + "x" * 90):
        assert api.get(f"/calendar/{token}.ics").status_code == 404
    assert api.get(f"/calendar/hfc_{'x' * 200}.ics").status_code == 422
