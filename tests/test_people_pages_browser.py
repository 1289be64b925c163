"""The member's and the employer's pages in a real browser (issue 16, item 7): Debian's
headless chromium driven by Playwright on a phone's screen in German, against a hub served by
uvicorn that sends its mail to a real SMTP server (aiosmtpd). Each person signs in by the
link in their invitation mail, as they would; axe-core checks each page for accessibility.
Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import db
from hub.app import create_app
from hub.server import hub_server
from tests.support.browser import (
    PHONE,
    accessibility_problems,
    chromium,
    fits_the_screen,
    needs_chromium,
    shoot,
)
from tests.support.edge import CARD_KEY
from tests.support.hub import add_staff, as_user
from tests.support.smtp import Inbox, smtp_server
from tests.support.waiting import wait_for

pytestmark = needs_chromium
PASSWORD = "Sommer am Hafen 2026"


class PeopleHub:
    """A hub on SQLite serving HTTP, mailing through aiosmtpd; nadia is its network admin."""

    url: str
    inbox: Inbox
    api: httpx.Client
    admin: dict[str, str]


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[PeopleHub]:
    with ExitStack() as stack:
        found = PeopleHub()
        engine = db.connect(f"sqlite:///{tmp_path_factory.mktemp('people') / 'hub.db'}")
        stack.callback(engine.dispose)
        add_staff(engine)
        smtp = stack.enter_context(smtp_server())
        server = hub_server(create_app(engine, CARD_KEY, mail=smtp.mailer()), port=0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        stack.callback(thread.join, 10)
        stack.callback(setattr, server, "should_exit", True)
        assert wait_for(lambda: server.started, 10)
        found.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        found.inbox = smtp.inbox
        found.api = stack.enter_context(httpx.Client(base_url=found.url))
        found.admin = as_user(found.api, "nadia")
        for site, name in (("leipzig-ost", "Hafen Leipzig-Ost"), ("borna", "Hafen Borna")):
            body = {"id": site, "name": name}
            assert found.api.post("/sites", json=body, headers=found.admin).is_success
        yield found


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def phone(browser: Any) -> Any:
    """A page on a phone's screen, in a German browser."""
    context = browser.new_context(viewport=PHONE, locale="de-DE", accept_downloads=True)
    return context.new_page()


def mail_to(hub: PeopleHub, address: str) -> str:
    """The link in the newest mail to ``address`` (waiting for it to arrive)."""

    def mailed() -> list[int]:
        return [i for i, m in enumerate(hub.inbox.messages) if m["To"] == address]

    assert wait_for(lambda: bool(mailed()), 10), f"no mail to {address}"
    return hub.inbox.link(mailed()[-1])


def accept(page: Any, link: str, landing: str) -> None:
    """Follow an invitation link, choose the password twice, and land on ``landing``."""
    page.goto(link)
    page.get_by_label("Neues Passwort").fill(PASSWORD)
    page.get_by_label("Dasselbe Passwort noch einmal").fill(PASSWORD)
    page.get_by_role("button", name="Speichern und anmelden").click()
    page.wait_for_url(f"**{landing}")


def checked(page: Any, name: str) -> None:
    """The page as a person sees it: fits a phone (a small one too), nothing for axe-core,
    a screenshot."""
    for width in (PHONE["width"], 360):
        page.set_viewport_size({"width": width, "height": PHONE["height"]})
        assert fits_the_screen(page), f"{name} is wider than a phone of {width} px"
    assert accessibility_problems(page) == [], name
    shoot(page, name)


def test_a_member_signs_in_by_mail_blocks_a_lost_card_and_makes_a_calendar_feed(browser, hub):
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


def test_an_employer_invites_staff_sets_an_allowance_and_downloads_the_statement(browser, hub):
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
