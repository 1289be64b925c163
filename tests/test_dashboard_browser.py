"""The dashboard in a real browser: Debian's headless chromium driven by Playwright, against a
hub served by uvicorn, a real mosquitto, the ingest worker and an edge agent whose card reader
is nfcpy's UDP driver. Each page is saved as a screenshot under ``test-artifacts/``."""

from __future__ import annotations

import csv
import io
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from sqlalchemy import insert, update

from hub import db
from hub.app import create_app
from hub.auth import Role
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from hub.server import hub_server
from sim.broker import LocalBroker
from tests.support.browser import PHONE, chromium, needs_chromium, shoot, signed_in_page
from tests.support.edge import CARD_KEY
from tests.support.events import sample
from tests.support.hub import add_user
from tests.support.network import TestHub, connected_edge
from tests.support.waiting import wait_for

ANNA = bytes.fromhex("04A1B2C3D4E5F6")

pytestmark = needs_chromium


class Network:
    """One site with a door on mock pins, a second site without, and the hub serving HTTP."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def __enter__(self) -> Network:
        Device.pin_factory = MockFactory()
        self.broker = LocalBroker(self.tmp / "broker").__enter__()
        self.hub = TestHub(self.tmp, self.broker).start()
        for site, name in (("leipzig-ost", "Hafen Ost"), ("berlin-mitte", "Hafen Mitte")):
            self.hub.add_site(site)
            with self.hub.engine.begin() as conn:
                conn.execute(update(db.sites).where(db.sites.c.id == site).values(name=name))
                conn.execute(
                    insert(db.devices).values(site=site, id="door-1", created_at=datetime.now(UTC))
                )
        self.hub.add_member("anna", ANNA)
        with self.hub.engine.begin() as conn:
            conn.execute(update(db.members).values(name="Anna Schmidt"))
        add_user(self.hub.engine, Role.NETWORK_ADMIN)
        add_user(self.hub.engine, Role.SITE_OPERATOR, ["berlin-mitte"])
        self.hub.publisher.publish_site("leipzig-ost")
        self.edge = connected_edge(self.tmp, self.hub)
        self.agent, self.card = self.edge.__enter__()
        assert wait_for(lambda: self.agent.acl_updater.version == 1, 10)
        app = create_app(self.hub.engine, CARD_KEY, self.hub.publisher)
        self.server = hub_server(app, port=0)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_for(lambda: self.server.started, 10)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.edge.__exit__(None, None, None)
        self.hub.stop()
        self.broker.__exit__(None, None, None)
        Device.pin_factory.close()
        Device.pin_factory = MockFactory()


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    with Network(tmp_path_factory.mktemp("dashboard")) as net:
        yield net


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def test_a_tap_at_the_door_shows_on_the_open_overview(browser, network):
    page = signed_in_page(browser, network.url, "nadia")
    page.wait_for_selector("#live-state[data-state=live]")
    entries = page.locator('[data-site="leipzig-ost"] [data-field="entries_today"]')
    before = int(entries.text_content())
    tapped = time.monotonic()
    network.card.present(ANNA)
    page.wait_for_function(
        "n => Number(document.querySelector("
        '\'[data-site="leipzig-ost"] [data-field="entries_today"]\').textContent) > n',
        arg=before,
        timeout=5000,
    )
    assert time.monotonic() - tapped < 5
    doors = page.locator('[data-site="leipzig-ost"] [data-field="doors"]').text_content()
    assert doors.strip() == "doors 1/1 online"
    shoot(page, "overview")
    page.context.close()


def test_the_site_page_draws_its_charts_and_names_the_member(browser, network):
    network.card.present(ANNA)
    assert wait_for(lambda: len(network.hub.events("leipzig-ost")) >= 1, 10)
    page = signed_in_page(browser, network.url, "nadia")
    page.click("text=Hafen Ost")
    page.wait_for_url("**/ui/sites/leipzig-ost")
    for chart in ("#today-chart", "#week-chart"):
        page.wait_for_function(
            "sel => document.querySelector(sel).complete"
            " && document.querySelector(sel).naturalWidth > 0",
            arg=chart,
        )
    assert page.locator("table.events").get_by_text("Anna Schmidt").first.is_visible()
    # The "now" card is live too: the next tap shows without a reload.
    page.wait_for_selector("#live-state[data-state=live]")
    entries = '.now[data-site="leipzig-ost"] [data-field="entries_today"]'
    before = int(page.locator(entries).text_content())
    stored = len(network.hub.events("leipzig-ost"))
    # A card still on the reader is one tap: it must have been taken away first (on a quick
    # machine the page is up before the reader has seen the first tap's card go).
    assert wait_for(lambda: not network.agent.reader.holding_card, 5)
    assert network.card.present(ANNA) is not None, "the reader never read the card"
    assert wait_for(lambda: len(network.hub.events("leipzig-ost")) > stored, 10), "not stored"
    page.wait_for_function(
        "([sel, n]) => Number(document.querySelector(sel).textContent) > n",
        arg=[entries, before],
        timeout=10000,
    )
    shoot(page, "site")
    page.goto(f"{network.url}/ui/fleet")
    assert page.locator("table.fleet tbody tr").count() == 2
    shoot(page, "fleet")
    page.context.close()


def test_the_monthly_report_downloads_as_csv(browser, network):
    # Alone on its worker (pytest -n), no earlier test tapped the card: its own tap, then.
    if not network.hub.events("leipzig-ost"):
        network.card.present(ANNA)
        assert wait_for(lambda: len(network.hub.events("leipzig-ost")) >= 1, 10)
    page = signed_in_page(browser, network.url, "nadia")
    page.click("nav >> text=Reports")
    page.wait_for_selector("table.report")
    shoot(page, "report")
    with page.expect_download() as download:
        page.click("#csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["site"] for r in rows] == ["berlin-mitte", "leipzig-ost"]
    assert int(rows[1]["visits"]) == 1 and int(rows[1]["entries"]) >= 1
    page.context.close()


def test_an_operator_of_one_site_never_sees_another(browser, network):
    page = signed_in_page(browser, network.url, "olga", viewport=PHONE)
    page.wait_for_selector("#live-state[data-state=live]")
    assert page.locator(".site").count() == 1
    assert page.locator('[data-site="berlin-mitte"]').is_visible()
    assert "Hafen Ost" not in page.content()
    # A phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, "overview-operator-phone")
    reply = page.goto(f"{network.url}/ui/sites/leipzig-ost")
    assert reply.status == 404
    page.context.close()


def test_a_site_added_while_the_overview_is_open_appears_on_it(browser, network):
    page = signed_in_page(browser, network.url, "nadia")
    page.wait_for_selector("#live-state[data-state=live]")
    network.hub.add_site("dresden-neustadt")
    page.wait_for_selector('.site[data-site="dresden-neustadt"]', timeout=10000)
    page.wait_for_selector("#live-state[data-state=live]")
    assert page.locator(".site").count() == 3
    page.context.close()


def test_the_now_card_shows_the_interval_and_the_places_free_as_they_change(browser, network):
    """The count's 90 % interval and the places free by it: drawn with the page, then kept
    current by static/live.js (the policy allows no inline script)."""
    ingest = IngestStore(network.hub.engine)
    at = datetime.now(UTC)

    def counted(seconds: int, count: int, **bounds: int) -> None:
        later = at + timedelta(seconds=seconds)
        ingest.write(Batch(events=[sample("leipzig-ost", later, count, "counter", **bounds)]))

    counted(0, 4, low=3, high=6)
    page = signed_in_page(browser, network.url, "nadia")
    page.goto(f"{network.url}/ui/sites/leipzig-ost")
    page.wait_for_selector("#live-state[data-state=live]")
    interval = '.now[data-site="leipzig-ost"] [data-field="interval"]'
    free = '.now[data-site="leipzig-ost"] [data-field="free"]'
    shown = "([sel, text]) => document.querySelector(sel).textContent === text"
    # The page may be drawn from a picture a second or two old; the stream brings it up to date.
    page.wait_for_function(shown, arg=[interval, "(3–6)"], timeout=10000)
    assert page.locator(free).text_content() == "14–17 places free"
    counted(1, 7, low=6, high=9)  # more people: the page follows without a reload
    page.wait_for_function(shown, arg=[interval, "(6–9)"], timeout=10000)
    assert page.locator(free).text_content() == "11–14 places free"
    shoot(page, "site-interval")
    counted(2, 7)  # as a door from before the interval would send it: neither is shown
    page.wait_for_function(shown, arg=[interval, ""], timeout=10000)
    assert page.locator(free).text_content() == ""
    assert page.locator('.now [data-field="count"]').text_content() == "7"
    page.context.close()
