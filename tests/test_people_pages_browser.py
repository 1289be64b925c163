"""The member's and the employer's pages in a real browser (issue 16, item 7): Debian's
headless chromium driven by Playwright on a phone's screen in German, against a hub served by
uvicorn that sends its mail to a real SMTP server (aiosmtpd). Each person signs in by the
link in their invitation mail, as they would; axe-core checks each page for accessibility.
Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.support.browser import needs_chromium, shoot
from tests.support.hub import as_user
from tests.support.people_browser import PASSWORD, accept, checked, mail_to, phone

pytestmark = needs_chromium


def test_a_member_signs_in_by_mail_blocks_a_lost_card_and_makes_a_calendar_feed(
    people_browser, people_hub
):
    browser, hub = people_browser, people_hub
    api, admin = hub.api, hub.admin
    api.post("/plans", json={"id": "flex"}, headers=admin)
    member = {"id": "anna", "name": "Anna Schmidt", "email": "anna@example.org"}
    assert api.post("/members", json=member, headers=admin).is_success
    for uid in ("04A1B2C3D4E5F6", "04A1B2C3D4E5F7"):
        assert api.post("/members/anna/cards", json={"uid": uid}, headers=admin).is_success
    api.post("/members/anna/grants", json={"plan": "flex"}, headers=admin)
    assert api.post("/members/anna/invitation", headers=admin).status_code == 201
    page = phone(browser)
    page.goto(mail_to(hub, "anna@example.org"))
    checked(page, "member-invitation")
    accept(page, page.url, "/ui/me")
    assert page.get_by_role("heading", level=1).text_content() == "Hallo, Anna Schmidt"
    checked(page, "member-home")

    page.get_by_role("navigation", name="Hauptmenü").get_by_role("link", name="Karten").click()
    page.wait_for_url("**/ui/me/cards")
    assert page.locator('[data-state="active"]').count() == 2
    checked(page, "member-cards")
    lost = page.locator("[data-card]").first.get_attribute("data-card")
    page.get_by_role("link", name=f"Karte {lost} als verloren melden").click()
    checked(page, "member-card-lost")
    page.get_by_role("button", name=f"Karte {lost} sperren").click()
    page.wait_for_url(f"**/ui/me/cards?lost={lost}")
    assert page.get_by_role("status").text_content().startswith(f"Karte {lost} ist gesperrt")
    assert page.locator(f'[data-card="{lost}"]').get_attribute("data-state") == "blocked"
    assert page.locator('[data-state="active"]').count() == 1
    anna = as_user(api, "anna@example.org", PASSWORD)  # the API agrees, at once
    revoked = {c["id"]: c["revoked"] for c in api.get("/me/cards", headers=anna).json()}
    assert revoked[lost] is True and list(revoked.values()).count(False) == 1

    page.get_by_role("link", name="Kalender").click()
    page.get_by_role("button", name="Kalender-Adresse anlegen").click()
    address = page.get_by_label("Adresse für Ihre Kalender-App")
    url = address.input_value()
    assert url.startswith(f"{hub.url}/calendar/hfc_") and url.endswith(".ics")
    webcal = page.get_by_role("link", name="In der Kalender-App öffnen").get_attribute("href")
    assert webcal == "webcal://" + url.removeprefix("http://")
    checked(page, "member-calendar")
    feed = api.get(url.removeprefix(hub.url))
    assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")
    page.context.close()


def test_an_employer_invites_staff_sets_an_allowance_and_downloads_the_statement(
    people_browser, people_hub
):
    browser, hub = people_browser, people_hub
    api, admin = hub.api, hub.admin
    company = {"id": "acme", "name": "ACME GmbH", "sites": ["borna", "leipzig-ost"]}
    assert api.put("/companies/acme", json=company, headers=admin).is_success
    body = {"email": "cora@acme.example", "name": "Cora Becker"}
    assert api.post("/companies/acme/admins", json=body, headers=admin).status_code == 201
    page = phone(browser)
    accept(page, mail_to(hub, "cora@acme.example"), "/ui/company")
    checked(page, "employer-staff-empty")

    page.get_by_role("link", name="Person hinzufügen").click()
    page.get_by_label("Name").fill("Bernd Krause")
    page.get_by_label("E-Mail").fill("bernd@acme.example")
    page.get_by_label("Kennung im Netzwerk").fill("bernd-krause")
    checked(page, "employer-new")
    page.get_by_role("button", name="Hinzufügen und einladen").click()
    assert "ging per E-Mail an b***@acme.example" in page.get_by_role("status").text_content()
    assert mail_to(hub, "bernd@acme.example").startswith(f"{hub.url}/ui/invitation/hfi_")
    checked(page, "employer-invited")

    page.get_by_role("link", name="Kontingent festlegen").click()
    page.get_by_label("Arbeitsplatztage pro Monat").fill("8")
    page.get_by_label("Nur an den hier angekreuzten Standorten:").check()
    page.get_by_label("borna").check()
    checked(page, "employer-allowance")
    page.get_by_role("button", name="Speichern").click()
    page.wait_for_url("**/ui/company?saved=bernd-krause")
    person = page.locator('[data-member="bernd-krause"]')
    assert person.get_attribute("data-account") == "invited"
    assert " ".join(person.locator("[data-field=allowance]").text_content().split()) == (
        "8 Arbeitsplatztage pro Monat · borna"
    )
    checked(page, "employer-staff")

    page.get_by_role("navigation", name="Hauptmenü").get_by_role("link", name="Nutzung").click()
    page.wait_for_url("**/ui/company/use")
    assert (
        page.locator('[data-member="bernd-krause"] [data-field="days_used"]').text_content() == "0"
    )
    checked(page, "employer-use")
    with page.expect_download() as download:
        page.get_by_role("link", name="Als CSV herunterladen").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["member"], r["name"], r["days_used"]) for r in rows[:2]] == [
        ("bernd-krause", "Bernd Krause", "0"), ("", "total", "0"),
    ]  # fmt: skip
    page.get_by_role("link", name="Abrechnung zum Drucken").click()
    page.wait_for_selector("article.statement")
    assert page.get_by_role("button", name="Drucken").is_visible()
    checked(page, "employer-statement")
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    page.emulate_media(media="print")
    for control in ("header.bar", "nav.languages", "form.month", "#csv"):  # the statement alone
        assert not page.locator(control).is_visible(), control
    shoot(page, "employer-statement-print")
    page.context.close()
