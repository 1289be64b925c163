"""A member finds a space and books it from their pages (issue 16, item 7), on SQLite and
PostgreSQL: spaces nearest a postcode, a desk or a room booked, their bookings listed with
each one's state and calendar file, cancelling after a second step (refused after the cut-off),
the waiting list of a full day joined and left; every refusal in the service's words, in
German for a German browser; nothing of another member's reachable, no form from elsewhere."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from babel.dates import format_date
from sqlalchemy import func, insert, select

from hub import db
from tests.support.booking import BERLIN, member_user, next_weekday, set_site, today
from tests.support.edge import CARD_KEY
from tests.support.hub import add_staff, api_client
from tests.support.pages import CROSS_SITE, signed_in
from tests.support.sites import add_sites
from tests.support.spaces import bookable_sites


@pytest.fixture
def hub(engine):
    """Borna and Leipzig-Ost with 2 desks each (a room at Borna); anna and bert on the plan
    flex, each a member who signs in. Yields the API's client."""
    add_staff(engine)
    with api_client(engine, CARD_KEY) as api:
        admin = add_sites(api)
        bookable_sites(engine)
        assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
        for member in ("anna", "bert"):
            member_user(api, member, admin, plan="flex")
        yield api


def booking_ids(html: str, state: str = r"\w+") -> list[int]:
    return [int(b) for b in re.findall(rf'data-booking="(\d+)" data-state="{state}"', html)]


def bookings_of(engine, member: str) -> int:
    with engine.connect() as conn:
        b = db.bookings.c
        return conn.scalar(select(func.count()).where(b.member_id == member)) or 0


def test_a_member_finds_the_nearest_space_books_a_desk_and_sees_it(hub):
    anna = signed_in(hub, "anna")
    home = anna.get("/ui/me").text
    assert 'href="/ui/me/spaces"' in home and 'href="/ui/me/bookings"' in home
    day = next_weekday(2)  # a Wednesday to come
    found = anna.get(f"/ui/me/spaces?near=04552&day={day}")
    assert found.status_code == 200
    assert re.findall(r'data-site="([\w-]+)"', found.text) == ["borna", "leipzig-ost"]
    borna = found.text.split('data-site="borna"')[1].split("</li>")[0]
    assert "Markt 1, 04552 Borna" in borna and "00:00–24:00" in borna
    assert "whole day: 2" in borna and f"/ui/me/spaces/borna/book?day={day}" in borna
    by_coordinates = anna.get("/ui/me/spaces?lat=51.34&lon=12.41").text
    assert re.findall(r'data-site="([\w-]+)"', by_coordinates) == ["leipzig-ost", "borna"]
    assert 'src="/ui/static/locate.js"' in found.text
    assert anna.get("/ui/static/locate.js").status_code == 200

    form = anna.get(f"/ui/me/spaces/borna/book?day={day}").text
    assert 'name="part" value="morning"' in form and "Studio (6 seats)" in form
    made = anna.post(
        "/ui/me/spaces/borna/book",
        data={"kind": "desk", "day": day.isoformat(), "part": "morning"},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    where = made.headers["location"]
    assert where.startswith("/ui/me/bookings?booked=")
    listed = anna.get(where).text
    [booking] = booking_ids(listed, "booked")
    assert f'data-booked="{booking}"' in listed and "Booked: Borna" in listed
    assert f'href="/ui/me/bookings/{booking}.ics"' in listed
    assert f'href="/ui/me/bookings/{booking}/cancel"' in listed
    ics = anna.get(f"/ui/me/bookings/{booking}.ics")
    assert ics.status_code == 200 and "Borna" in ics.text

    room = {"kind": "room", "room": "studio", "day": day.isoformat(), "start": "10:00"}
    too_many = anna.post("/ui/me/spaces/borna/book", data=room | {"end": "11:00", "attendees": "9"})
    assert too_many.status_code == 422
    assert "studio at borna seats 6: 9 do not fit" in too_many.text
    assert 'value="10:00"' in too_many.text  # the form as typed
    booked = anna.post("/ui/me/spaces/borna/book", data=room | {"end": "11:15", "attendees": "4"})
    assert booked.status_code == 200 and "Room studio" in booked.text
    assert len(booking_ids(booked.text, "booked")) == 2


def test_refusals_are_said_in_german_and_a_full_day_offers_its_waiting_list(hub):
    set_site(hub.engine, "borna", desks=1)
    day = next_weekday(3)
    desk = {"kind": "desk", "day": day.isoformat(), "part": "day"}
    assert signed_in(hub, "bert").post("/ui/me/spaces/borna/book", data=desk).status_code == 200
    anna = signed_in(hub, "anna", lang="de")
    full = anna.post("/ui/me/spaces/borna/book", data=desk)
    assert full.status_code == 409
    on_day = format_date(day, "medium", locale="de")
    assert (
        f"In borna ist am {on_day} kein Arbeitsplatz mehr frei (Tag); tragen Sie sich auf die"
        " Warteliste ein" in full.text
    )
    assert 'action="/ui/me/spaces/borna/waiting"' in full.text
    assert (
        anna.post("/ui/me/spaces/borna/waiting", data=desk, headers=CROSS_SITE).status_code == 403
    )
    joined = anna.post("/ui/me/spaces/borna/waiting", data=desk, follow_redirects=False)
    assert joined.status_code == 303
    entry = int(joined.headers["location"].removeprefix("/ui/me/bookings?waiting="))
    listed = anna.get(joined.headers["location"]).text
    assert "Sie stehen auf der Warteliste für Borna" in listed
    assert f'data-entry="{entry}" data-state="waiting"' in listed and "Nummer 1" in listed
    again = anna.post("/ui/me/spaces/borna/waiting", data=desk)
    assert again.status_code == 409 and "Sie stehen schon auf der Warteliste" in again.text

    yesterday = day - timedelta(days=(day - today()).days + 1)
    past = anna.post("/ui/me/spaces/borna/book", data=desk | {"day": yesterday.isoformat()})
    assert past.status_code == 422
    assert f"Der {format_date(yesterday, 'medium', locale='de')} ist vorbei" in past.text
    nowhere = anna.get("/ui/me/spaces?near=Bornaa")
    assert nowhere.status_code == 422
    assert "Kein Ort namens 'Bornaa' (meinten Sie 'Borna'?)" in html.unescape(nowhere.text)
    english = signed_in(hub, "anna").post("/ui/me/spaces/borna/book", data=desk)
    assert "no desk left at borna on" in english.text  # the API's words, in English

    left = anna.post(f"/ui/me/waiting/{entry}/leave", follow_redirects=False)
    assert left.headers["location"] == f"/ui/me/bookings?left={entry}"
    assert f'data-entry="{entry}" data-state="left"' in anna.get(left.headers["location"]).text


def test_cancelling_asks_first_and_nothing_of_another_members_is_reachable(hub):
    day = next_weekday(4)
    desk = {"kind": "desk", "day": day.isoformat(), "part": "afternoon"}
    anna, bert = signed_in(hub, "anna", lang="de"), signed_in(hub, "bert")
    refused = anna.post("/ui/me/spaces/borna/book", data=desk, headers=CROSS_SITE)
    assert refused.status_code == 403 and bookings_of(hub.engine, "anna") == 0
    [booking] = booking_ids(anna.post("/ui/me/spaces/borna/book", data=desk).text)

    # Not bert's: neither to see, nor to cancel, nor listed among his.
    assert bert.get(f"/ui/me/bookings/{booking}/cancel").status_code == 404
    assert bert.post(f"/ui/me/bookings/{booking}/cancel").status_code == 404
    assert booking_ids(bert.get("/ui/me/bookings").text) == []
    with hub.engine.begin() as conn:
        entry = conn.execute(
            insert(db.waiting_list).returning(db.waiting_list.c.id).values(
                site_id="borna", day=day, member_id="bert", part="day",
                created_at=datetime.now(UTC),
            )
        ).scalar_one()  # fmt: skip
    assert anna.post(f"/ui/me/waiting/{entry}/leave").status_code == 404
    assert bert.post(f"/ui/me/waiting/{entry}/leave", headers=CROSS_SITE).status_code == 403
    assert f'data-entry="{entry}" data-state="waiting"' in bert.get("/ui/me/bookings").text

    confirm = anna.get(f"/ui/me/bookings/{booking}/cancel")
    assert confirm.status_code == 200 and "Buchung stornieren" in confirm.text
    assert f'action="/ui/me/bookings/{booking}/cancel"' in confirm.text
    crossed = anna.post(f"/ui/me/bookings/{booking}/cancel", headers=CROSS_SITE)
    assert crossed.status_code == 403
    assert booking_ids(anna.get("/ui/me/bookings").text, "booked") == [booking]
    done = anna.post(f"/ui/me/bookings/{booking}/cancel", follow_redirects=False)
    assert done.headers["location"] == f"/ui/me/bookings?cancelled={booking}"
    listed = anna.get(done.headers["location"]).text
    assert f'data-cancelled="{booking}"' in listed
    assert booking_ids(listed, "cancelled") == [booking]
    assert f"/ui/me/bookings/{booking}/cancel" not in listed

    soon = datetime.now(UTC) + timedelta(minutes=30)  # within the hour before it starts
    with hub.engine.begin() as conn:
        late = conn.execute(
            insert(db.bookings).returning(db.bookings.c.id).values(
                member_id="anna", site_id="borna", kind="room", room_id="studio",
                day=soon.astimezone(BERLIN).date(), starts_at=soon,
                ends_at=soon + timedelta(hours=1), created_at=soon, attendees=1,
            )
        ).scalar_one()  # fmt: skip
    too_late = anna.post(f"/ui/me/bookings/{late}/cancel")
    assert too_late.status_code == 409
    assert "kann bis 60 Minuten vor Beginn storniert werden" in too_late.text
    assert booking_ids(anna.get("/ui/me/bookings").text, "booked") == [late]


def test_a_booking_page_for_a_day_gone_by_says_why_in_german(hub):
    """The spaces' "Book" link keeps its day: followed after midnight, the day is over, and
    the page that refuses it says so in the visitor's language, as the list says it."""
    anna = signed_in(hub, "anna", lang="de")
    yesterday = today() - timedelta(days=1)
    gone = anna.get("/ui/me/spaces/borna/book", params={"day": yesterday.isoformat()})
    assert gone.status_code == 422
    on_day = format_date(yesterday, "medium", locale="de")
    assert f"Der {on_day} liegt in der Vergangenheit" in gone.text
    english = signed_in(hub, "anna").get(
        "/ui/me/spaces/borna/book", params={"day": yesterday.isoformat()}
    )
    assert f"day: {format_date(yesterday, 'medium', locale='en')} is in the past" in english.text
