"""What an employer sees of their staff's use (issue 16): per person and in total, days booked,
days used (verified by taps at the door, through the real ingest roll-ups), days booked but not
used and sites; never when anyone came. Only what the company's allowance paid for counts and
is listed, never its staff's own bookings, also of people who have left. Each company admin
sees only their company; operators invoice their sites' part; the CSV is safe to open in a
spreadsheet. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from hub import db
from hub.auth import Role
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from tests.support.events import tap
from tests.support.hub import add_user, as_user
from tests.support.sites import add_sites

MONDAY = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)  # 09:30 in Leipzig


def book(conn, member: str, site: str, day: date, **values) -> int:
    """A booking of ``member`` (``company_id=``: within that company's allowance)."""
    start = datetime.combine(day, MONDAY.timetz())
    return conn.execute(
        insert(db.bookings)
        .returning(db.bookings.c.id)
        .values(
            member_id=member,
            site_id=site,
            kind="desk",
            part="day",
            day=day,
            starts_at=start,
            ends_at=start + timedelta(hours=8),
            created_at=start - timedelta(days=7),
            **values,
        )
    ).scalar_one()


def staffed(api) -> dict[str, dict[str, str]]:
    """acme (anna, ben) and rival (rita), a month of November at borna and leipzig-ost."""
    admin = add_sites(api)
    for company in ("acme", "rival"):
        body = {"id": company, "name": company.title(), "sites": ["borna", "leipzig-ost"]}
        assert api.put(f"/companies/{company}", json=body, headers=admin).is_success
    for member, company in (("anna", "acme"), ("ben", "acme"), ("rita", "rival")):
        body = {"id": member, "name": "=HYPERLINK(evil)" if member == "ben" else member.title()}
        assert api.post("/members", json=body, headers=admin).is_success
        assert api.put(
            f"/members/{member}/company", json={"company": company}, headers=admin
        ).is_success
    days = [MONDAY.date() + timedelta(days=d) for d in range(4)]
    with api.engine.begin() as conn:
        for day in days[:3]:
            book(conn, "anna", "borna", day, company_id="acme")  # three days, comes on two
        # Cancelled: not booked.
        book(conn, "anna", "borna", days[3], cancelled_at=MONDAY, company_id="acme")
        book(conn, "ben", "leipzig-ost", days[0], company_id="acme")
        book(conn, "rita", "borna", days[0], company_id="rival")
    store = IngestStore(api.engine)
    store.write(
        Batch(
            events=[
                tap("borna", "anna", MONDAY),
                tap("borna", "anna", MONDAY + timedelta(hours=3)),  # the same day again
                tap("borna", "anna", MONDAY + timedelta(days=1)),
                tap("leipzig-ost", "ben", MONDAY),
                tap("borna", "ben", MONDAY + timedelta(days=5)),  # came without a booking
                tap("borna", "rita", MONDAY),
            ]
        )
    )
    add_user(api.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    add_user(api.engine, Role.COMPANY_ADMIN, username="ralf", company_id="rival")
    return {
        "admin": admin,
        "cora": as_user(api, "cora"),
        "ralf": as_user(api, "ralf"),
        "olga": as_user(api, "olga"),  # operator of leipzig-ost
        "tim": as_user(api, "tim"),
    }


def test_the_company_admin_sees_days_per_person_and_in_total_never_times(api):
    who = staffed(api)
    answer = api.get("/company/use", params={"month": "2026-11"}, headers=who["cora"])
    assert answer.status_code == 200, answer.text
    use = answer.json()
    people = {p["member"]: p for p in use["people"]}
    assert set(people) == {"anna", "ben"}  # rita is rival's
    anna, ben = people["anna"], people["ben"]
    assert (anna["days_booked"], anna["days_used"], anna["booked_unused"]) == (3, 2, 1)
    assert anna["sites"] == ["borna"]
    assert (ben["days_booked"], ben["days_used"], ben["used_unbooked"]) == (1, 2, 1)
    assert ben["sites"] == ["borna", "leipzig-ost"]
    assert use["totals"]["days_booked"] == 4 and use["totals"]["days_used"] == 4
    assert "days used" in use["definitions"]
    assert "T0" not in answer.text and "first_at" not in answer.text  # days, never times
    rival = api.get("/company/use", params={"month": "2026-11"}, headers=who["ralf"]).json()
    assert [p["member"] for p in rival["people"]] == ["rita"]


def test_a_company_sees_only_what_it_paid_for_never_its_staffs_own_bookings(api):
    who = staffed(api)
    cora, month = who["cora"], {"month": "2026-11"}
    assert api.post(
        "/members", json={"id": "fred", "name": "Fred"}, headers=who["admin"]
    ).is_success
    friday = MONDAY.date() + timedelta(days=4)
    with api.engine.begin() as conn:
        # anna's own, on a plan of hers (before she joined, say): none of acme's business.
        private = book(conn, "anna", "leipzig-ost", friday)
        # fred left acme since; what acme paid for him in November is still acme's.
        freds = book(conn, "fred", "borna", friday, company_id="acme")
    use = api.get("/company/use", params=month, headers=cora).json()
    people = {p["member"]: p for p in use["people"]}
    assert people["anna"]["days_booked"] == 3 and people["anna"]["sites"] == ["borna"]
    assert people["fred"]["days_booked"] == 1 and people["fred"]["booked_unused"] == 1
    listed = api.get("/company/bookings", params=month, headers=cora).json()
    assert freds in {b["id"] for b in listed} and private not in {b["id"] for b in listed}
    assert {b["member"] for b in listed} == {"anna", "ben", "fred"}
    assert api.get(f"/company/bookings/{private}", headers=cora).status_code == 404
    assert api.get(f"/company/bookings/{freds}", headers=cora).status_code == 200
    assert api.delete(f"/company/bookings/{private}", headers=cora).status_code == 404


def test_roles_see_only_their_part_of_a_statement(api):
    who = staffed(api)
    month = {"month": "2026-11"}
    assert (
        api.get("/companies/acme/statement", params=month, headers=who["cora"]).status_code == 403
    )
    assert api.get("/company/use", params=month, headers=who["admin"]).status_code == 403
    assert api.get("/companies/acme/statement", params=month, headers=who["tim"]).status_code == 403
    whole = api.get("/companies/acme/statement", params=month, headers=who["admin"]).json()
    assert whole["totals"]["days_used"] == 4 and whole["sites"] is None
    part = api.get("/companies/acme/statement", params=month, headers=who["olga"]).json()
    assert part["sites"] == ["leipzig-ost"]
    # Only who booked or came at olga's site, never the rest of the staff (anna: borna only).
    assert {p["member"]: p["days_used"] for p in part["people"]} == {"ben": 1}
    assert (
        api.get("/companies/nope/statement", params=month, headers=who["admin"]).status_code == 404
    )
    for text in ("2026-13", "0001-01", "9999-12"):  # the fuzz test's finds: not a 500
        bad = api.get("/company/use", params={"month": text}, headers=who["cora"])
        assert bad.status_code == 422 and text in bad.text


def test_the_statement_csv_has_a_row_per_person_a_total_and_no_formulas(api):
    who = staffed(api)
    answer = api.get("/company/statement.csv", params={"month": "2026-11"}, headers=who["cora"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert 'filename="acme-2026-11.csv"' in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:4] == ["member", "name", "days_booked", "days_used"]
    assert [r[0] for r in rows[1:4]] == ["anna", "ben", ""]
    assert rows[2][1] == "'=HYPERLINK(evil)"  # a spreadsheet shows it, never runs it
    assert rows[3][1] == "total" and rows[3][2:4] == ["4", "4"]
    assert any(r[0].startswith("# days used:") for r in rows)
