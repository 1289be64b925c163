"""An employer books a desk for one of their staff in a real browser (issue 16, items 6 and
7): Debian's chromium driven by Playwright on a phone in German, against the served hub the
people pages' browser tests share (tests/support/people_browser.py). The employer signs in
by the link in their invitation mail, finds the spaces nearest the person's postcode, books a
desk, sees it listed and cancels it; axe-core checks the new pages."""

from __future__ import annotations

from datetime import timedelta

from tests.support.booking import today
from tests.support.browser import needs_chromium
from tests.support.hub import as_user
from tests.support.people_browser import PASSWORD, accept, checked, mail_to, phone

pytestmark = needs_chromium
#: Spaces of this test's own (the shared hub's others take no bookings): Wurzen nearer the
#: person's postcode, Eilenburg farther.
SPACES = [
    {"id": "wurzen", "name": "Hafen Wurzen", "latitude": 51.3667, "longitude": 12.7333,
     "address": "Markt 1, 04808 Wurzen", "desks": 3},
    {"id": "eilenburg", "name": "Hafen Eilenburg", "latitude": 51.4600, "longitude": 12.6336,
     "address": "Markt 1, 04838 Eilenburg", "desks": 2},
]  # fmt: skip


def test_an_employer_books_a_desk_for_staff_sees_it_and_cancels_it(people_browser, people_hub):
    hub, api, admin = people_hub, people_hub.api, people_hub.admin
    for space in SPACES:
        assert api.post("/sites", json=space, headers=admin).status_code == 201
    company = {"id": "hafenwerk", "name": "Hafenwerk GmbH", "sites": ["wurzen", "eilenburg"]}
    assert api.put("/companies/hafenwerk", json=company, headers=admin).is_success
    jonas = {"id": "jonas", "name": "Jonas Weber", "email": "jonas@hafenwerk.example"}
    assert api.post("/members", json=jonas, headers=admin).status_code == 201
    employed = api.put("/members/jonas/company", json={"company": "hafenwerk"}, headers=admin)
    assert employed.status_code == 200
    body = {"email": "clara@hafenwerk.example", "name": "Clara Vogel"}
    assert api.post("/companies/hafenwerk/admins", json=body, headers=admin).status_code == 201

    page = phone(people_browser)
    accept(page, mail_to(hub, "clara@hafenwerk.example"), "/ui/company")
    page.get_by_role("navigation", name="Hauptmenü").get_by_role("link", name="Buchungen").click()
    page.wait_for_url("**/ui/company/bookings")
    page.get_by_role("link", name="Für Mitarbeitende buchen").click()
    day = today() + timedelta(days=1)
    page.get_by_label("Person").select_option(label="Jonas Weber")
    page.get_by_label("In der Nähe von (Postleitzahl oder Ort)").fill("04808")
    page.get_by_label("Tag", exact=True).fill(day.isoformat())
    page.get_by_label("Vormittag").check()
    page.get_by_role("button", name="Orte finden").click()
    page.wait_for_url("**/ui/company/bookings/new?*")
    spaces = page.locator("li[data-site]")
    assert [spaces.nth(i).get_attribute("data-site") for i in range(2)] == ["wurzen", "eilenburg"]
    assert "3 Arbeitsplätze frei · Vormittag" in " ".join(
        page.locator('[data-site="wurzen"] [data-field="free"]').text_content().split()
    )
    checked(page, "employer-book-for-staff")

    page.get_by_role("button", name="Arbeitsplatz in Hafen Wurzen buchen").click()
    page.wait_for_url("**/ui/company/bookings?booked=*")
    assert (
        page.get_by_role("status")
        .text_content()
        .startswith("Gebucht für Jonas Weber: Hafen Wurzen,")
    )
    booked = page.locator('[data-member="jonas"][data-site="wurzen"]')
    assert booked.get_attribute("data-use") == "booked"
    assert "Vormittag" in booked.text_content()
    checked(page, "employer-staff-bookings")

    booked.get_by_role("button").click()
    page.wait_for_url("**/ui/company/bookings?cancelled=*")
    assert page.get_by_role("status").text_content().startswith("Die Buchung ist storniert")
    assert page.locator('[data-member="jonas"]').count() == 0
    clara = as_user(api, "clara@hafenwerk.example", PASSWORD)  # the API agrees
    made = api.get("/company/bookings", params={"month": f"{day:%Y-%m}"}, headers=clara).json()
    assert [(b["member"], b["part"], b["cancelled"]) for b in made] == [("jonas", "morning", True)]
    page.context.close()
