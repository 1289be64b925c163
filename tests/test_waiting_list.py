"""The waiting list (issue 16), on SQLite and PostgreSQL, with a real SMTP server: a member
waits only when no desk is left, under the rules of booking; a desk freed by a cancellation,
a release or a staff removal goes to the first one waiting whose part fits, who is told by
mail, and the member whose booking was released is told too; a member who may no longer
book is passed over with the reason; entries whose part is over end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from hub import db
from hub.auth import Role
from hub.services.no_shows import SETTLE, sweep
from tests.support.booking import BERLIN, add_door, door_tap, member_user, set_site, today
from tests.support.hub import add_user, as_user
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

GRACE = timedelta(minutes=60)


@pytest.fixture
def borna(mail_api):
    """Borna always open with one desk and a door online; mia, ole and uwe on the
    network-wide plan, each with an address. Returns the headers by name (nadia: admin)."""
    api, _inbox = mail_api
    admin = add_sites(api)
    set_site(api.engine, "borna", desks=1)
    add_door(api.engine, "borna")
    assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
    people = {"nadia": admin}
    for name in ("mia", "ole", "uwe"):
        people[name] = member_user(api, name, admin, plan="flex", email=f"{name}@example.org")
    return people


def desk(day, part="day", site="borna") -> dict:
    return {"site": site, "kind": "desk", "day": day.isoformat(), "part": part}


def wait(day, part="day", site="borna") -> dict:
    return {"site": site, "day": day.isoformat(), "part": part}


def joined(api, who, day, part="day") -> dict:
    answer = api.post("/me/waiting", json=wait(day, part), headers=who)
    assert answer.status_code == 201, answer.text
    return answer.json()


#: The subject of a booking's confirmation (tests/test_booking_confirmation.py): every
#: booking made here sends one, which these tests pass over.
CONFIRMATION = "Gebucht / Booked"


def mails_to(inbox, address: str, confirmations: bool = False) -> list[str]:
    return [
        inbox.text(i)
        for i, m in enumerate(inbox.messages)
        if m["To"] == address and (confirmations or not m["Subject"].startswith(CONFIRMATION))
    ]


def told(inbox) -> list:
    """The mails that are not confirmations."""
    return [m for m in inbox.messages if not m["Subject"].startswith(CONFIRMATION)]


def refused(answer, status: int, detail: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"] == detail


def test_a_member_waits_only_when_no_desk_is_left_and_once_a_day(mail_api, borna):
    api, inbox = mail_api
    mia, ole, uwe = borna["mia"], borna["ole"], borna["uwe"]
    day = today() + timedelta(days=2)
    refused(
        api.post("/me/waiting", json=wait(day), headers=ole),
        409,
        f"a desk is free at borna on {day} (day): book it",
    )
    assert api.post("/me/bookings", json=desk(day), headers=mia).status_code == 201
    first = joined(api, ole, day)
    assert (first["state"], first["position"], first["member"]) == ("waiting", 1, "ole")
    refused(
        api.post("/me/waiting", json=wait(day, "morning"), headers=ole),
        409,
        f"you are on the waiting list for borna on {day} already (entry {first['id']}); leave"
        " it first to wait for another part of the day",
    )
    # The rules of booking: mia holds the desk, a past day cannot be waited for.
    refused(
        api.post("/me/waiting", json=wait(day), headers=mia),
        409,
        f"you already have a desk at borna on {day} (day): booking 1; cancel it to book"
        " another part",
    )
    past = api.post("/me/waiting", json=wait(today() - timedelta(days=1)), headers=uwe)
    assert past.status_code == 422 and "is over" in past.json()["detail"]
    assert api.post("/me/waiting", json=wait(day) | {"seats": 2}, headers=uwe).status_code == 422
    second = joined(api, uwe, day)
    assert second["position"] == 2
    # Each sees their own entries only; leaving moves the next one up.
    assert [e["id"] for e in api.get("/me/waiting", headers=uwe).json()] == [second["id"]]
    assert api.delete(f"/me/waiting/{second['id']}", headers=ole).status_code == 404
    left = api.delete(f"/me/waiting/{first['id']}", headers=ole).json()
    assert (left["state"], left["position"]) == ("left", None)
    assert api.get("/me/waiting", headers=uwe).json()[0]["position"] == 1
    assert told(inbox) == []


def test_a_cancellation_gives_the_desk_to_the_first_waiting_who_is_told(mail_api, borna):
    api, inbox = mail_api
    mia, ole, uwe = borna["mia"], borna["ole"], borna["uwe"]
    day = today() + timedelta(days=2)
    booked = api.post("/me/bookings", json=desk(day), headers=mia).json()
    first, second = joined(api, ole, day), joined(api, uwe, day)
    assert api.delete(f"/me/bookings/{booked['id']}", headers=mia).json()["state"] == "cancelled"
    [got] = api.get("/me/bookings", headers=ole).json()
    assert (got["site"], got["day"], got["part"], got["state"]) == (
        "borna",
        day.isoformat(),
        "day",
        "booked",
    )
    entries = {e["id"]: e for e in api.get("/me/waiting", headers=ole).json()}
    assert (entries[first["id"]]["state"], entries[first["id"]]["booking"]) == ("booked", got["id"])
    assert api.get("/me/waiting", headers=uwe).json()[0]["position"] == 1
    with api.engine.connect() as conn:
        grant = conn.execute(select(db.grants).where(db.grants.c.booking_id == got["id"])).one()
    assert grant.member_id == "ole" and grant.sites == ["borna"]
    assert wait_for(lambda: mails_to(inbox, "ole@example.org"), 10)
    [text] = mails_to(inbox, "ole@example.org")
    assert (
        f"you got a desk (day) at Borna, {day:%d.%m.%Y} 00:00–24:00 (booking {got['id']})" in text
    )
    assert mails_to(inbox, "uwe@example.org") == []
    assert second["id"] not in entries


def test_a_release_gives_the_desk_to_the_first_waiting_and_both_are_told(mail_api, borna):
    api, inbox = mail_api
    mia, ole = borna["mia"], borna["ole"]
    day = today() + timedelta(days=2)
    booked = api.post("/me/bookings", json=desk(day), headers=mia).json()
    joined(api, ole, day)
    due = datetime.fromisoformat(booked["starts_at"]) + GRACE + SETTLE
    done = sweep(api.engine, None, now=due, sends_mail=True)
    [got] = api.get("/me/bookings", headers=ole).json()
    assert (done.released, done.given) == ([booked["id"]], [got["id"]])
    assert wait_for(lambda: len(told(inbox)) == 2, 10)
    [released] = mails_to(inbox, "mia@example.org")
    assert f"your booking {booked['id']} – desk (day) at Borna" in released
    assert "A tap of your card at the door of Borna by 01:00 would have kept it" in released
    [given] = mails_to(inbox, "ole@example.org")
    # Made after its start, the new booking has its grace time from when it was made.
    until = (due + GRACE).astimezone(BERLIN)
    assert f"Tap it at the door by {until:%H:%M}" in given
    assert sweep(api.engine, None, now=due + timedelta(minutes=5)).released == []


def test_a_member_who_may_no_longer_book_is_passed_over_with_the_reason(mail_api, borna):
    api, inbox = mail_api
    admin, mia, ole, uwe = borna["nadia"], borna["mia"], borna["ole"], borna["uwe"]
    day = today() + timedelta(days=2)
    booked = api.post("/me/bookings", json=desk(day), headers=mia).json()
    first, second = joined(api, ole, day), joined(api, uwe, day)
    assert api.post("/members/ole/block", headers=admin).status_code == 204
    api.delete(f"/bookings/{booked['id']}", headers=admin)
    [passed_over] = api.get("/me/waiting", headers=ole).json()
    assert (passed_over["id"], passed_over["state"]) == (first["id"], "refused")
    assert passed_over["reason"] == "you are blocked; ask the network's management"
    [got] = api.get("/me/waiting", headers=uwe).json()
    assert (got["id"], got["state"]) == (second["id"], "booked")
    assert wait_for(lambda: mails_to(inbox, "uwe@example.org"), 10)
    assert mails_to(inbox, "ole@example.org") == []


def test_a_freed_morning_goes_to_the_first_waiting_for_a_part_it_fits(mail_api, borna):
    api, _inbox = mail_api
    mia, ole, uwe = borna["mia"], borna["ole"], borna["uwe"]
    day = today() + timedelta(days=2)
    morning = api.post("/me/bookings", json=desk(day, "morning"), headers=mia).json()
    assert api.post("/me/bookings", json=desk(day, "afternoon"), headers=uwe).status_code == 201
    joined(api, ole, day, "day")  # needs the afternoon too: it does not fit
    waiting = api.post("/me/waiting", json=wait(day, "morning"), headers=uwe)
    assert waiting.status_code == 201, waiting.text
    api.delete(f"/me/bookings/{morning['id']}", headers=mia)
    assert [e["state"] for e in api.get("/me/waiting", headers=ole).json()] == ["waiting"]
    parts = sorted(b["part"] for b in api.get("/me/bookings", headers=uwe).json())
    assert parts == ["afternoon", "morning"]


def test_entries_whose_part_is_over_end(mail_api, borna):
    api, _inbox = mail_api
    mia, ole = borna["mia"], borna["ole"]
    day = today() + timedelta(days=2)
    booked = api.post("/me/bookings", json=desk(day), headers=mia).json()
    entry = joined(api, ole, day, "morning")
    starts = datetime.fromisoformat(booked["starts_at"])
    door_tap(api.engine, "mia", starts + timedelta(minutes=10))  # she came: nothing frees
    noon = starts + timedelta(hours=12, minutes=59)
    assert sweep(api.engine, None, now=noon).expired == 0
    assert sweep(api.engine, None, now=noon + timedelta(minutes=1)).expired == 1
    [ended] = [e for e in api.get("/me/waiting", headers=ole).json() if e["id"] == entry["id"]]
    assert ended["state"] == "expired"
    assert ended["reason"] == f"the morning of {day} is over: no desk freed for it in time"


def test_taking_someone_off_the_staff_frees_their_desks_to_the_waiting_list(mail_api, borna):
    api, inbox = mail_api
    admin, ole = borna["nadia"], borna["ole"]
    company = {"id": "acme", "name": "ACME", "sites": ["borna"], "days_per_person": 4}
    assert api.put("/companies/acme", json=company, headers=admin).status_code == 200
    member_user(api, "sam", admin, company="acme")
    cora = as_user(
        api, add_user(api.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    )
    day = today() + timedelta(days=2)
    made = api.post("/company/bookings", json=desk(day) | {"member": "sam"}, headers=cora)
    assert made.status_code == 201, made.text
    entry = joined(api, ole, day)
    # cora waits for sam at another day: that entry ends with the removal.
    assert api.post(
        "/me/bookings", json=desk(day + timedelta(days=1)), headers=borna["mia"]
    ).is_success
    staff_wait = api.post(
        "/company/waiting", json=wait(day + timedelta(days=1)) | {"member": "sam"}, headers=cora
    )
    assert staff_wait.status_code == 201, staff_wait.text
    assert [e["member"] for e in api.get("/company/waiting", headers=cora).json()] == ["sam"]
    assert api.delete(f"/company/waiting/{entry['id']}", headers=cora).status_code == 404
    removed = api.delete("/company/staff/sam", headers=cora).json()
    assert removed == {"member": "sam", "cancelled_bookings": 1}
    [got] = api.get("/me/bookings", headers=ole).json()
    assert got["day"] == day.isoformat()
    assert wait_for(lambda: mails_to(inbox, "ole@example.org"), 10)
    with api.engine.connect() as conn:
        w = db.waiting_list.c
        outcome = conn.execute(
            select(w.outcome, w.reason).where(w.id == staff_wait.json()["id"])
        ).one()
    assert tuple(outcome) == ("refused", "you are no longer on acme's staff")


def test_an_employer_sees_and_ends_only_the_entries_it_made(mail_api, borna):
    api, _inbox = mail_api
    admin = borna["nadia"]
    company = {"id": "acme", "name": "ACME", "sites": ["borna"]}
    assert api.put("/companies/acme", json=company, headers=admin).status_code == 200
    sam = member_user(api, "sam", admin, company="acme")
    cora = as_user(
        api, add_user(api.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    )
    day, later = today() + timedelta(days=2), today() + timedelta(days=3)
    for when, who in ((day, "mia"), (later, "ole")):  # Borna's one desk, taken both days
        assert api.post("/me/bookings", json=desk(when), headers=borna[who]).is_success
    own = joined(api, sam, day)  # sam's own: his business, not his employer's
    made = api.post("/company/waiting", json=wait(later) | {"member": "sam"}, headers=cora)
    assert made.status_code == 201, made.text
    assert [e["id"] for e in api.get("/company/waiting", headers=cora).json()] == [
        made.json()["id"]
    ]
    refused(
        api.delete(f"/company/waiting/{own['id']}", headers=cora), 404, "no such waiting-list entry"
    )
    ended = api.delete(f"/company/waiting/{made.json()['id']}", headers=cora)
    assert ended.status_code == 200 and ended.json()["state"] == "left"
    states = {e["id"]: e["state"] for e in api.get("/me/waiting", headers=sam).json()}
    assert states == {own["id"]: "waiting", made.json()["id"]: "left"}


def test_a_desk_free_without_a_cancellation_goes_to_the_waiting_at_the_next_sweep(mail_api, borna):
    """A desk the site adds (or one that freed while the waiting member was busy booking
    elsewhere) is found by the sweep."""
    api, inbox = mail_api
    mia, ole = borna["mia"], borna["ole"]
    day = today() + timedelta(days=2)
    assert api.post("/me/bookings", json=desk(day), headers=mia).status_code == 201
    entry = joined(api, ole, day)
    assert sweep(api.engine, None, sends_mail=True).given == []
    set_site(api.engine, "borna", desks=2)
    done = sweep(api.engine, None, sends_mail=True)
    [got] = api.get("/me/bookings", headers=ole).json()
    assert done.given == [got["id"]]
    [ended] = api.get("/me/waiting", headers=ole).json()
    assert (ended["id"], ended["state"], ended["booking"]) == (entry["id"], "booked", got["id"])
    assert wait_for(lambda: mails_to(inbox, "ole@example.org"), 10)


# A booking made is confirmed by mail (issue 16: "booking confirmations go out by e-mail"),
# with its .ics attached; a refused booking sends nothing.


def test_a_booking_is_confirmed_with_its_calendar_file_and_a_refusal_sends_nothing(mail_api, borna):
    api, inbox = mail_api
    tomorrow = datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")).date() + timedelta(days=1)
    made = api.post("/me/bookings", json=desk(tomorrow), headers=borna["mia"])
    assert made.status_code == 201, made.text
    booking = made.json()["id"]
    assert wait_for(lambda: mails_to(inbox, "mia@example.org", confirmations=True), 10)
    [message] = [m for m in inbox.messages if m["To"] == "mia@example.org"]
    [text] = mails_to(inbox, "mia@example.org", confirmations=True)
    assert f"Buchung {booking}" in text and f"booking {booking} is made" in text
    [attached] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    [event] = Calendar.from_ical(attached.get_content()).walk("VEVENT")
    assert str(event["uid"]) == f"booking-{booking}@testserver"
    assert event.decoded("dtstart").astimezone(ZoneInfo("Europe/Berlin")).date() == tomorrow

    # The one desk is taken: ole's refused booking is confirmed to nobody.
    refused = api.post("/me/bookings", json=desk(tomorrow), headers=borna["ole"])
    assert refused.status_code == 409
    assert mails_to(inbox, "ole@example.org", confirmations=True) == []
