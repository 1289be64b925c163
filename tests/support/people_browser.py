"""What the browser tests of the member's and employer's pages share: one hub on SQLite served
by uvicorn, mailing through a real SMTP server (aiosmtpd), started once per test process
(``people_hub``: a second start costs seconds of the suite's budget); a headless chromium per
module (``people_browser``: Playwright's sync API runs one at a time in a process, and other
modules start their own); its sites take bookings (tests.support.spaces); a German phone's
page; following an invitation mail; and the checks every page is held to (fits a phone,
nothing for axe-core, a screenshot).

Tests that share the hub keep to ids of their own (companies, members, addresses)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from hub import db
from hub.app import create_app
from hub.server import hub_server
from tests.support.browser import PHONE, accessibility_problems, chromium, fits_the_screen, shoot
from tests.support.edge import CARD_KEY
from tests.support.hub import add_staff, as_user
from tests.support.smtp import Inbox, smtp_server
from tests.support.spaces import bookable_sites
from tests.support.waiting import wait_for

#: The password everyone invited chooses.
PASSWORD = "Sommer am Hafen 2026"


class PeopleHub:
    """A hub on SQLite serving HTTP, mailing through aiosmtpd; nadia is its network admin.
    Its sites, Hafen Leipzig-Ost and Hafen Borna, take bookings (tests.support.spaces)."""

    url: str
    inbox: Inbox
    api: httpx.Client
    admin: dict[str, str]
    engine: Engine


@pytest.fixture(scope="session")
def people_hub(tmp_path_factory) -> Iterator[PeopleHub]:
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
        found.engine = engine
        # A sign-in hashes its password (argon2): on a loaded machine that takes seconds.
        found.api = stack.enter_context(httpx.Client(base_url=found.url, timeout=30))
        found.admin = as_user(found.api, "nadia")
        for site, name in (("leipzig-ost", "Hafen Leipzig-Ost"), ("borna", "Hafen Borna")):
            body = {"id": site, "name": name}
            assert found.api.post("/sites", json=body, headers=found.admin).is_success
        bookable_sites(engine)
        yield found


@pytest.fixture(scope="module")
def people_browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def phone(browser: Any, **options: Any) -> Any:
    """A page on a phone's screen, in a German browser (``options``: the context's more)."""
    context = browser.new_context(viewport=PHONE, locale="de-DE", accept_downloads=True, **options)
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
