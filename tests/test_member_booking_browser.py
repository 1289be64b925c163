"""A member books from their phone (issue 16, item 7), in a real browser: Debian's headless
chromium driven by Playwright on a phone's screen in German, against a hub served by uvicorn
that mails through a real SMTP server. She signs in by her invitation mail's link, finds the
space nearest where her phone is, books a desk for a morning, sees it among her bookings,
downloads its calendar file and cancels it; axe-core checks each page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from icalendar import Calendar

from tests.support.booking import BERLIN, today
from tests.support.browser import needs_chromium
from tests.support.people_browser import accept, checked, mail_to, phone
from tests.support.spaces import PLACES

pytestmark = needs_chromium


def test_a_member_finds_a_space_books_a_desk_downloads_it_and_cancels_it(
    people_browser, people_hub
):
    hub, api, admin = people_hub, people_hub.api, people_hub.admin
    api.post("/plans", json={"id": "flex"}, headers=admin)  # the people tests may have made it
    member = {"id": "mia", "name": "Mia Wagner", "email": "mia@example.org"}
    assert api.post("/members", json=member, headers=admin).is_success
    assert api.post("/members/mia/grants", json={"plan": "flex"}, headers=admin).is_success
    assert api.post("/members/mia/invitation", headers=admin).status_code == 201
    borna = PLACES["borna"]
    where = {"latitude": borna["latitude"] + 0.01, "longitude": borna["longitude"]}
    page = phone(people_browser, geolocation=where, permissions=["geolocation"])
    accept(page, mail_to(hub, "mia@example.org"), "/ui/me")

    page.get_by_role("navigation", name="Hauptmenü").get_by_role("link", name="Orte").click()
    page.wait_for_url("**/ui/me/spaces")
    page.get_by_role("button", name="Meinen Standort verwenden").click()
    page.wait_for_url("**/ui/me/spaces?*lat=*")
    spaces = page.locator("li.space")
    assert [spaces.nth(i).get_attribute("data-site") for i in range(2)] == ["borna", "leipzig-ost"]
    assert (
        "Die nächsten zu Ihrem Standort zuerst." in page.locator("[data-field=place]").inner_text()
    )
    checked(page, "member-spaces")

    page.get_by_role("link", name="In Hafen Borna buchen").click()
    day = today() + timedelta(days=1)
    page.locator("#desk").get_by_label("Tag", exact=True).fill(day.isoformat())
    page.get_by_label("Vormittag").check()
    checked(page, "member-book")
    page.get_by_role("button", name="Arbeitsplatz buchen").click()
    page.wait_for_url("**/ui/me/bookings?booked=*")
    booking = page.url.rsplit("=", 1)[1]
    assert page.get_by_role("status").inner_text().startswith("Gebucht: Hafen Borna am")
    row = page.locator(f'[data-booking="{booking}"]')
    assert row.get_attribute("data-state") == "booked" and "Vormittag" in row.inner_text()
    checked(page, "member-bookings")

    with page.expect_download() as download:
        page.get_by_role("link", name=f"Kalenderdatei der Buchung {booking}").click()
    [event] = Calendar.from_ical(Path(download.value.path()).read_bytes()).walk("VEVENT")
    assert "Hafen Borna" in str(event["SUMMARY"])
    assert event.decoded("DTSTART").astimezone(BERLIN).date() == day

    page.get_by_role("link", name=f"Buchung {booking} stornieren").click()
    checked(page, "member-cancel")
    page.get_by_role("button", name="Buchung stornieren").click()
    page.wait_for_url(f"**/ui/me/bookings?cancelled={booking}")
    assert row.get_attribute("data-state") == "cancelled"
    assert api.get(f"/bookings/{booking}", headers=admin).json()["state"] == "cancelled"
    page.context.close()
