"""An employer books for their staff from the pages (issue 16, items 6 and 7), over HTTP on
SQLite and PostgreSQL: the spaces nearest a place, a desk booked and listed (days, never
times; used or not once over), cancelled; every refusal on the form in the service's words
(the same the API gives), a full day's waiting list joined and left; and nothing of someone
not on the admin's own staff (404)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.dates import format_date
from markupsafe import escape
from sqlalchemy import insert, select

from hub import db
from hub.auth import Role
from tests.support.booking import BERLIN, set_site, today
from tests.support.employer import add_harbour, add_staff_member, days_in_one_month
from tests.support.hub import add_user, as_user
from tests.support.pages import CROSS_SITE, signed_in


@pytest.fixture
def harbour(api):
    """ACME's admin cora with bob and sam on its staff; otto looks after Other, whose staff
    is rita; mia is a member of no company. Returns (the API's client, nadia's header)."""
    admin = as_user(api, "nadia")
    add_harbour(api, admin)
    other = {"id": "other", "name": "Other", "sites": ["borna"]}
    assert api.put("/companies/other", json=other, headers=admin).is_success
    for member, name, company in (("bob", "Bob", "acme"), ("sam", "Sam", "acme")):
        add_staff_member(api, admin, member, name, company)
    add_staff_member(api, admin, "rita", "Rita", "other")
    assert api.post("/members", json={"id": "mia", "name": "Mia"}, headers=admin).is_success
    add_user(api.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    add_user(api.engine, Role.COMPANY_ADMIN, username="otto", company_id="other")
    return api, admin


def desk(member: str, day, site: str = "borna", part: str = "day", near: str = "04552") -> dict:
    """The form a space's "Book a desk" button posts."""
    return {"member": member, "near": near, "day": day.isoformat(), "part": part, "site": site}


def alert(page: str) -> str:
    """The refusal shown beside the form."""
    found = re.search(r'role="alert"[^>]*>\s*<p>(.*?)</p>', page, re.S)
    assert found is not None, page
    return found.group(1)


def page_dates(detail: str) -> str:
    """The API's words as an English page says them: its ISO days written "Jan 1, 2027"."""
    return re.sub(
        r"\b\d{4}-\d{2}-\d{2}\b",
        lambda day: format_date(date.fromisoformat(day[0]), "medium", locale="en"),
        detail,
    )


def listed(page: str) -> list[tuple[str, str, str]]:
    """The bookings on the list: (member, site, use)."""
    return re.findall(
        r'data-booking="\d+" data-member="([\w-]+)" data-site="([\w-]+)" data-use="(\w+)"', page
    )


def test_an_employer_finds_a_space_near_a_person_books_a_desk_and_cancels_it(harbour):
    api, _admin = harbour
    cora = signed_in(api, "cora")
    (day,) = days_in_one_month(1)
    empty = cora.get("/ui/company/bookings")
    assert empty.status_code == 200 and "No bookings for your staff yet." in empty.text
    assert '<a href="/ui/company/bookings" aria-current="page">Bookings</a>' in empty.text
    assert 'href="/ui/company/bookings/new?member=bob"' in cora.get("/ui/company").text

    query = {"member": "bob", "near": "04552", "day": day.isoformat(), "part": "morning"}
    found = cora.get("/ui/company/bookings/new", params=query)
    assert found.status_code == 200 and "Book for Bob" in found.text
    assert re.findall(r'<li class="card row" data-site="([\w-]+)"', found.text) == [
        "borna", "grimma", "leipzig-ost",
    ]  # fmt: skip
    assert re.search(r'data-field="free">\s*2 desks free · Morning', found.text)
    assert '<option value="bob" selected>Bob</option>' in found.text
    foreign = cora.post("/ui/company/bookings", data=desk("bob", day), headers=CROSS_SITE)
    assert foreign.status_code == 403

    made = cora.post("/ui/company/bookings", data=desk("bob", day), follow_redirects=False)
    assert made.status_code == 303
    booking = int(made.headers["location"].rsplit("=", 1)[1])
    assert made.headers["location"] == f"/ui/company/bookings?booked={booking}"
    shown = cora.get(made.headers["location"]).text
    assert "Booked for Bob: Hafen Borna," in shown
    assert listed(shown) == [("bob", "borna", "booked")]
    assert not re.search(r"\b\d{1,2}:\d{2}\b", shown)  # days, never times
    with api.engine.connect() as conn:
        row = conn.execute(select(db.bookings).where(db.bookings.c.id == booking)).one()
        cora_id = conn.scalar(select(db.users.c.id).where(db.users.c.username == "cora"))
    assert (row.member_id, row.day, row.part, row.booked_by) == ("bob", day, "day", cora_id)

    # A room for hours, on the space's clock.
    room = desk("sam", day) | {"room": "studio", "start": "09:00", "end": "11:00", "attendees": "3"}
    assert cora.post("/ui/company/bookings", data=room, follow_redirects=False).status_code == 303
    with api.engine.connect() as conn:
        studio = conn.execute(select(db.bookings).where(db.bookings.c.room_id == "studio")).one()
    assert db.aware(studio.starts_at).astimezone(BERLIN).strftime("%H:%M") == "09:00"
    assert "Room studio, 09:00–11:00" in cora.get("/ui/company/bookings").text

    path = f"/ui/company/bookings/{booking}/cancel"
    assert cora.post(path, headers=CROSS_SITE).status_code == 403
    cancelled = cora.post(path, follow_redirects=False)
    assert cancelled.headers["location"] == f"/ui/company/bookings?cancelled={booking}"
    after = cora.get(cancelled.headers["location"]).text
    assert "The booking is cancelled" in after and ("bob", "borna", "booked") not in listed(after)
    with api.engine.connect() as conn:
        assert (
            conn.scalar(select(db.bookings.c.cancelled_at).where(db.bookings.c.id == booking))
            is not None
        )


def test_refusals_come_back_on_the_form_in_the_services_words(harbour):
    api, _admin = harbour
    cora = signed_in(api, "cora")
    cora_api = as_user(api, "cora")
    d1, d2 = days_in_one_month(2)

    def refused(form: dict, status: int) -> str:
        """The page's refusal, which must be the API's for the same booking."""
        page = cora.post("/ui/company/bookings", data=form)
        assert page.status_code == status, page.text
        body = {k: v for k, v in form.items() if k in ("member", "site", "day", "part")}
        api_says = api.post("/company/bookings", json=body, headers=cora_api)
        assert api_says.status_code == status
        assert alert(page.text) == escape(page_dates(api_says.json()["detail"]))
        assert 'name="near" value="04552"' in page.text  # the form as typed
        return page.text

    assert cora.post("/ui/company/bookings", data=desk("bob", d1)).status_code == 200
    refused(desk("bob", d2), 409)  # one desk day a month: used up
    refused(desk("sam", d1, "grimma"), 422)  # a site ACME does not book
    refused(desk("sam", today() - timedelta(days=1)), 422)  # past
    refused(desk("sam", today() + timedelta(days=90)), 422)  # beyond the 60 days ahead
    set_site(api.engine, "leipzig-ost", closed_days=[d1.isoformat()])
    refused(desk("sam", d1, "leipzig-ost"), 422)  # a holiday
    # The page's own words for what is not a day at all; the spaces' search says what it
    # cannot find.
    odd = cora.post("/ui/company/bookings", data=desk("sam", d1) | {"day": "soon"})
    assert odd.status_code == 422 and alert(odd.text) == "Day: a date such as 2026-12-07."
    for start in ("09:00Z", "09:00+01"):  # a time of day with a zone of its own
        zoned = desk("sam", d1) | {"room": "studio", "start": start, "end": "11:00"}
        answer = cora.post("/ui/company/bookings", data=zoned)
        assert answer.status_code == 422 and alert(answer.text).startswith("Room: a time from")
    nowhere = {"member": "sam", "near": "Atlantis", "day": d1.isoformat()}
    unknown = cora.get("/ui/company/bookings/new", params=nowhere)
    assert unknown.status_code == 422 and "no place called" in alert(unknown.text)

    # A full day: the waiting list is offered, joined, listed and left.
    set_site(api.engine, "borna", desks=1)
    full = refused(desk("sam", d1), 409)
    assert 'action="/ui/company/waiting"' in full and "Put Sam on the waiting list" in full
    foreign = cora.post("/ui/company/waiting", data=desk("sam", d1), headers=CROSS_SITE)
    assert foreign.status_code == 403
    joined = cora.post("/ui/company/waiting", data=desk("sam", d1), follow_redirects=False)
    assert joined.status_code == 303
    entry = int(joined.headers["location"].rsplit("=", 1)[1])
    listing = cora.get(joined.headers["location"]).text
    assert "Sam is on the waiting list for borna" in listing
    assert f'data-waiting="{entry}" data-member="sam" data-state="waiting"' in listing
    assert "number 1 in line" in listing
    again = cora.post("/ui/company/waiting", data=desk("sam", d1))
    assert again.status_code == 409 and "on the waiting list for borna" in alert(again.text)
    leave = f"/ui/company/waiting/{entry}/leave"
    assert cora.post(leave, headers=CROSS_SITE).status_code == 403
    left = cora.post(leave, follow_redirects=False)
    assert left.headers["location"] == f"/ui/company/bookings?left={entry}"
    assert (
        f'data-waiting="{entry}" data-member="sam" data-state="left"'
        in cora.get(left.headers["location"]).text
    )


def test_a_german_employer_is_refused_in_german(harbour):
    """The service's words on the employer's form in the page's language, as the member's
    pages say them: a German page says neither "is over" nor "already" in English."""
    api, _admin = harbour
    cora = signed_in(api, "cora", lang="de")
    d1, d2 = days_in_one_month(2)
    yesterday = today() - timedelta(days=1)
    past = cora.post("/ui/company/bookings", data=desk("sam", yesterday))
    assert past.status_code == 422
    on_day = format_date(yesterday, "medium", locale="de")
    assert alert(past.text).startswith(f"Der {on_day} ist vorbei; buchen Sie den ")
    assert cora.post("/ui/company/bookings", data=desk("bob", d1)).status_code == 200
    used_up = cora.post("/ui/company/bookings", data=desk("bob", d2))
    assert used_up.status_code == 409 and "Arbeitsplatztag" in alert(used_up.text)


def test_a_past_booking_shows_whether_it_was_used_never_when(harbour):
    api, _admin = harbour
    cora = signed_in(api, "cora")
    with api.engine.begin() as conn:
        cora_id = conn.scalar(select(db.users.c.id).where(db.users.c.username == "cora"))
        for member, days_ago, arrived in (("bob", 2, True), ("sam", 3, False)):
            day = today() - timedelta(days=days_ago)
            start = datetime.combine(day, datetime.min.time(), BERLIN).astimezone(UTC)
            conn.execute(
                insert(db.bookings).values(
                    member_id=member, site_id="borna", kind="desk", part="day", day=day,
                    starts_at=start, ends_at=start + timedelta(days=1), created_at=start,
                    booked_by=cora_id, company_id="acme",
                    arrived_at=start + timedelta(hours=8, minutes=47) if arrived else None,
                )
            )  # fmt: skip
        # A booking on bob's own plan is his own, not on his employer's list.
        start = datetime.now(UTC) + timedelta(days=3)
        conn.execute(
            insert(db.bookings).values(
                member_id="bob", site_id="borna", kind="desk", part="day", day=start.date(),
                starts_at=start, ends_at=start + timedelta(hours=8), created_at=start,
            )
        )  # fmt: skip
    shown = cora.get("/ui/company/bookings").text
    assert listed(shown) == [("sam", "borna", "not_used"), ("bob", "borna", "used")]
    assert "08:47" not in shown and not re.search(r"\b\d{1,2}:\d{2}\b", shown)
    assert "Cancel booking" not in shown  # over: nothing to cancel, and the hub agrees
    sams = next(iter(re.findall(r'data-booking="(\d+)" data-member="sam"', shown)))
    late = cora.post(f"/ui/company/bookings/{sams}/cancel")
    assert late.status_code == 409
    assert "can be cancelled until 60 minutes before it starts" in late.text
    assert listed(late.text) == listed(shown)


def test_nobody_books_for_or_sees_someone_not_on_their_own_staff(harbour):
    api, _admin = harbour
    cora, otto = signed_in(api, "cora"), signed_in(api, "otto")
    d1, _d2 = days_in_one_month(2)
    made = cora.post("/ui/company/bookings", data=desk("bob", d1), follow_redirects=False)
    booking = int(made.headers["location"].rsplit("=", 1)[1])
    set_site(api.engine, "borna", desks=1)
    joined = cora.post("/ui/company/waiting", data=desk("sam", d1), follow_redirects=False)
    entry = int(joined.headers["location"].rsplit("=", 1)[1])

    for stranger in ("rita", "mia", "nobody"):  # another company's staff, no company's, none
        assert cora.post("/ui/company/bookings", data=desk(stranger, d1)).status_code == 404
        assert cora.post("/ui/company/waiting", data=desk(stranger, d1)).status_code == 404
        query = {"member": stranger, "day": d1.isoformat()}
        assert cora.get("/ui/company/bookings/new", params=query).status_code == 404
    # Otto sees none of ACME's bookings or entries and reaches none of them.
    theirs = otto.get("/ui/company/bookings").text
    assert listed(theirs) == [] and "data-waiting=" not in theirs
    assert otto.post(f"/ui/company/bookings/{booking}/cancel").status_code == 404
    assert otto.post(f"/ui/company/waiting/{entry}/leave").status_code == 404
    assert otto.get("/ui/company/bookings/new", params={"member": "bob"}).status_code == 404
    options = re.findall(r'<option value="([\w-]+)"', otto.get("/ui/company/bookings/new").text)
    assert options == ["rita"]
    with api.engine.connect() as conn:
        b, w = db.bookings.c, db.waiting_list.c
        assert conn.scalar(select(b.cancelled_at).where(b.id == booking)) is None
        assert conn.scalar(select(w.ended_at).where(w.id == entry)) is None
    # Nor are the pages the network's staff's.
    assert signed_in(api, "nadia").get("/ui/company/bookings").status_code == 403
