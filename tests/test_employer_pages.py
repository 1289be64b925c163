"""An employer's pages (issue 16, item 7) over HTTP, on SQLite and PostgreSQL: the staff list,
inviting someone (the form kept as typed when refused), an allowance (the refusal's reason
shown), removing someone after a second step; the month's use, days only, with its printable
statement and CSV; each company admin sees only their own staff, and staff see a company's
statement from the report page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from sqlalchemy import insert, select

from hub import db
from hub.auth import Role
from tests.support.hub import add_user
from tests.support.pages import CROSS_SITE, field, signed_in
from tests.support.sites import add_sites

MONTH = "2026-11"
MONDAY = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


@pytest.fixture
def employers(api):
    """ACME (both sites) with its admin cora, Other (borna) with otto; yields the API's client."""
    admin = add_sites(api)
    api.post("/sites", json={"id": "weimar", "name": "Weimar"}, headers=admin)
    for company, sites in (("acme", ["borna", "leipzig-ost"]), ("other", ["borna"])):
        body = {"id": company, "name": company.upper(), "sites": sites}
        assert api.put(f"/companies/{company}", json=body, headers=admin).status_code == 200
    add_user(api.engine, Role.COMPANY_ADMIN, username="cora", company_id="acme")
    add_user(api.engine, Role.COMPANY_ADMIN, username="otto", company_id="other")
    return api


def row(html: str, member: str) -> str:
    """The cells of a person's row (``total``: the total's) in a month's table."""
    found = re.search(rf'<tr (?:class="total" )?data-member="{member}">(.*?)</tr>', html, re.S)
    assert found is not None, html
    return found.group(1)


def staff_ids(html: str) -> list[str]:
    return re.findall(r'data-member="([\w-]+)" data-account', html)


def test_a_company_admin_invites_staff_and_a_refused_form_keeps_what_was_typed(employers):
    cora = signed_in(employers, "cora")
    assert cora.landed == "/ui/company"
    empty = cora.get("/ui/company")
    assert empty.status_code == 200 and "Nobody on your staff yet" in empty.text
    assert '<a href="/ui/company" aria-current="page">Staff</a>' in empty.text
    typed = {"id": "Bob Example", "name": "Bob Example", "email": "bob@example.org"}
    refused = cora.post("/ui/company/staff/new", data=typed)
    assert refused.status_code == 422 and "Id: lower-case letters" in refused.text
    assert 'value="Bob Example"' in refused.text and 'value="bob@example.org"' in refused.text
    bad_mail = cora.post("/ui/company/staff/new", data=typed | {"id": "bob", "email": "bob"})
    assert bad_mail.status_code == 422 and "E-mail: an address such as" in bad_mail.text
    assert (
        cora.post(
            "/ui/company/staff/new", data=typed | {"id": "bob"}, headers=CROSS_SITE
        ).status_code
        == 403
    )

    added = cora.post("/ui/company/staff/new", data=typed | {"id": "bob"})
    assert added.status_code == 200 and "Bob Example is on your staff" in added.text
    assert 'data-invitation="link"' in added.text  # this hub sends no mail: hand it over
    link = field(added.text, "invitation-link")
    assert link.startswith("http://testserver/ui/invitation/hfi_")
    assert "bob@example.org" in added.text  # the user name he signs in with
    listed = cora.get("/ui/company").text
    assert staff_ids(listed) == ["bob"] and 'data-account="invited"' in listed
    again = cora.post("/ui/company/staff/bob/invitation")
    assert again.status_code == 200 and "A new invitation for Bob Example" in again.text
    link, first = field(again.text, "invitation-link"), link
    assert link != first

    # Another company's admin cannot take the id, nor see or touch ACME's staff.
    otto = signed_in(employers, "otto")
    taken = otto.post("/ui/company/staff/new", data=typed | {"id": "bob"})
    assert taken.status_code == 409 and "choose another id" in taken.text
    assert 'value="Bob Example"' in taken.text
    assert staff_ids(otto.get("/ui/company").text) == []
    for path in ("allowance", "remove"):
        assert otto.get(f"/ui/company/staff/bob/{path}").status_code == 404
        assert otto.post(f"/ui/company/staff/bob/{path}").status_code == 404
    assert otto.post("/ui/company/staff/bob/invitation").status_code == 404
    # The employer's pages are no staff's; nor, once signed in, Bob's (a member).
    assert signed_in(employers, "nadia").get("/ui/company").status_code == 403
    path = link.removeprefix("http://testserver")
    signed = employers.post(
        path,
        data={"password": "bob's own password", "again": "bob's own password"},
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/ui/me"
    assert employers.get("/ui/company").status_code == 403
    assert 'data-account="active"' in cora.get("/ui/company").text


def test_an_allowance_is_set_and_a_refusal_says_why(employers):
    cora = signed_in(employers, "cora", lang="de")
    cora.post("/ui/company/staff/new", data={"id": "bob", "name": "Bob", "email": "bob@ex.org"})
    form = cora.get("/ui/company/staff/bob/allowance")
    assert form.status_code == 200
    assert re.findall(r'name="sites" value="([\w-]+)"', form.text) == ["borna", "leipzig-ost"]
    path = "/ui/company/staff/bob/allowance"
    too_many = cora.post(path, data={"days": "40", "rule": "all"})
    assert too_many.status_code == 422 and "eine ganze Zahl von 0 bis 31" in too_many.text
    assert 'value="40"' in too_many.text
    # A site the company does not book (a form changed by hand): the service's reason.
    outside = cora.post(path, data={"days": "8", "rule": "some", "sites": ["borna", "weimar"]})
    assert outside.status_code == 422
    assert (
        "&#39;weimar&#39; is not one of your company&#39;s sites (borna, leipzig-ost)"
        in outside.text
    )
    assert 'value="8"' in outside.text and 'value="borna" checked' in outside.text
    with employers.engine.connect() as conn:
        assert conn.execute(select(db.allowances)).all() == []  # nothing changed
    saved = cora.post(
        path, data={"days": "8", "rule": "some", "sites": ["borna"]}, follow_redirects=False
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/ui/company?saved=bob"
    listed = cora.get(saved.headers["location"]).text
    assert "Das Kontingent von bob ist gespeichert." in listed
    assert re.search(r"8 Arbeitsplatztage pro Monat ·\s+borna", listed)
    assert 'value="some" checked' in cora.get(path).text
    back = cora.post(path, data={"days": "", "rule": "all"}, follow_redirects=False)
    assert back.status_code == 303
    assert "Vorgaben Ihrer Firma" in cora.get("/ui/company").text


def test_removing_someone_asks_first_and_ends_what_the_company_gave(employers):
    cora = signed_in(employers, "cora")
    cora.post("/ui/company/staff/new", data={"id": "bob", "name": "Bob", "email": "bob@ex.org"})
    confirm = cora.get("/ui/company/staff/bob/remove")
    assert "Take Bob off your staff?" in confirm.text
    assert 'action="/ui/company/staff/bob/remove"' in confirm.text
    assert staff_ids(cora.get("/ui/company").text) == ["bob"]  # asking changed nothing
    assert cora.post("/ui/company/staff/bob/remove", headers=CROSS_SITE).status_code == 403
    done = cora.post("/ui/company/staff/bob/remove", follow_redirects=False)
    assert done.headers["location"] == "/ui/company?removed=bob&cancelled=0"
    listed = cora.get(done.headers["location"]).text
    assert "bob is no longer on your staff" in listed and staff_ids(listed) == []
    with employers.engine.connect() as conn:
        assert conn.scalar(select(db.members.c.company_id).where(db.members.c.id == "bob")) is None


def month_of_use(engine) -> None:
    """bob (acme): booked two days at borna in November, came on one of them and one more."""
    with engine.begin() as conn:
        for member, company in (("bob", "acme"), ("rita", "other")):
            conn.execute(
                insert(db.members).values(
                    id=member, name=member.title(), company_id=company, blocked=False
                )
            )
        for day in (2, 3):
            start = MONDAY + timedelta(days=day - 2)
            conn.execute(
                insert(db.bookings).values(
                    member_id="bob", site_id="borna", kind="desk", part="day", day=start.date(),
                    starts_at=start, ends_at=start + timedelta(hours=8), created_at=start,
                    company_id="acme",
                )
            )  # fmt: skip
        for member, company, day in (("bob", "acme", 2), ("bob", "acme", 5), ("rita", "other", 2)):
            at = MONDAY + timedelta(days=day - 2)
            conn.execute(
                insert(db.visits).values(
                    site="borna", day=at.date().isoformat(), member=member, company=company,
                    first_at=at, last_at=at + timedelta(hours=5), entries=3,
                )
            )  # fmt: skip


def test_the_months_use_shows_days_never_times_with_its_statement_and_csv(employers):
    month_of_use(employers.engine)
    cora = signed_in(employers, "cora")
    use = cora.get(f"/ui/company/use?month={MONTH}")
    assert use.status_code == 200 and "Use in November 2026" in use.text
    bob = row(use.text, "bob")
    assert 'data-field="days_booked">2<' in bob and 'data-field="days_used">2<' in bob
    total = row(use.text, "total")
    assert 'data-field="days_used">2<' in total
    assert "rita" not in use.text.lower()  # another company's staff
    assert not re.search(r"\b\d{1,2}:\d{2}\b", use.text)  # no time of day anywhere
    assert 'href="/ui/company/use?month=2026-10"' in use.text
    assert 'href="/ui/company/use?month=2026-12"' in use.text
    assert 'href="/ui/company/use?month=2026-11&amp;lang=de"' in use.text  # the same month
    statement = cora.get(f"/ui/company/statement?month={MONTH}")
    assert statement.status_code == 200 and "Statement for November 2026" in statement.text
    assert "data-print" in statement.text and "/ui/static/actions.js" in statement.text
    assert not re.search(r"\b\d{1,2}:\d{2}\b", statement.text)
    download = cora.get(f"/ui/company/statement.csv?month={MONTH}")
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="hafen-acme-2026-11.csv"' in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["member"], r["days_booked"], r["days_used"]) for r in rows[:2]] == [
        ("bob", "2", "2"), ("", "2", "2"),
    ]  # fmt: skip
    assert "@media print" in cora.get("/ui/static/hafen.css").text
    # Without a month: this one, where the company's sites are (Berlin, not UTC).
    berlin = datetime.now(ZoneInfo("Europe/Berlin"))
    now = cora.get("/ui/company/use").text
    assert f"Use in {format_date(berlin, 'LLLL yyyy', locale='en')}" in now
    bad = cora.get("/ui/company/use?month=2026-13")
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    # The other company's admin sees their own month only; neither reaches the staff's page.
    other = signed_in(employers, "otto").get(f"/ui/company/use?month={MONTH}").text
    assert re.findall(r'<tr data-member="([\w-]+)">', other) == ["rita"]
    assert cora.get(f"/ui/companies/acme/statement?month={MONTH}").status_code == 403


def test_staff_reach_a_companys_statement_from_the_report_page(employers):
    month_of_use(employers.engine)
    nadia = signed_in(employers, "nadia")
    report = nadia.get(f"/ui/reports?month={MONTH}").text
    assert f'href="/ui/companies/acme/statement?month={MONTH}"' in report
    statement = nadia.get(f"/ui/companies/acme/statement?month={MONTH}")
    assert statement.status_code == 200 and 'data-company="acme"' in statement.text
    assert '<tr data-member="bob">' in statement.text and 'data-field="sites"' not in statement.text
    rows = list(
        csv.DictReader(
            io.StringIO(nadia.get(f"/ui/companies/acme/statement.csv?month={MONTH}").text)
        )
    )
    assert rows[0]["member"] == "bob"
    # An operator of leipzig-ost invoices their sites' part (bob came to borna); no list of
    # companies on their report page; technicians see no people.
    olga = signed_in(employers, "olga")
    part = olga.get(f"/ui/companies/acme/statement?month={MONTH}").text
    assert 'data-field="sites">Only the days at these sites: leipzig-ost.' in part
    assert 'data-field="days_used">0<' in part
    assert "/ui/companies/" not in olga.get(f"/ui/reports?month={MONTH}").text
    assert (
        signed_in(employers, "tim").get(f"/ui/companies/acme/statement?month={MONTH}").status_code
        == 403
    )
    assert nadia.get(f"/ui/companies/nope/statement?month={MONTH}").status_code == 404
