"""The enrolment token's page in a real browser (Debian's chromium, Playwright): its QR code
is drawn, on a phone too, and nothing on it breaks the pages' strict content policy (the QR
code is inline SVG: an inline style in it would be refused)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from hub import db
from hub.app import create_app
from hub.auth import Role
from tests.support.browser import PHONE, chromium, needs_chromium, shoot, signed_in_page
from tests.support.enrolling import authority_without_broker, served
from tests.support.hub import add_user

pytestmark = needs_chromium

#: Collects the page's policy violations as the browser reports them to the page itself.
WATCH_POLICY = """
window.violations = [];
document.addEventListener("securitypolicyviolation",
  e => window.violations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.fixture
def served_hub(tmp_path):
    """A hub served by uvicorn over SQLite, with tim, a site and its door, and a device
    authority (no broker: making a token needs none); its URL."""
    engine = db.connect(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id="leipzig-ost", timezone="Europe/Berlin"))
        conn.execute(
            insert(db.devices).values(site="leipzig-ost", id="door-1", created_at=datetime.now(UTC))
        )
    add_user(engine, Role.TECHNICIAN)
    app = create_app(engine, authority=authority_without_broker(tmp_path))
    with served(app) as url:
        yield url
    engine.dispose()


def test_the_token_page_draws_its_qr_code_within_the_policy_on_a_phone(served_hub):
    with chromium() as browser:
        page = signed_in_page(browser, served_hub, "tim", viewport=PHONE)
        complaints: list[str] = []
        page.on(
            "console",
            lambda m: complaints.append(m.text) if m.type in ("error", "warning") else None,
        )
        page.add_init_script(WATCH_POLICY)
        page.goto(f"{served_hub}/ui/fleet")
        page.select_option("select[name=kind]", "sensor")
        page.fill("input[name=device]", "co2-hall")
        page.fill("input[name=valid_minutes]", "90")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, "fleet-add-device-phone")
        page.click("button:has-text('Add a device')")
        page.wait_for_selector("#command")
        qr = page.locator("svg.qr")
        assert qr.is_visible()
        box = qr.bounding_box()
        assert box is not None and 150 <= box["width"] <= PHONE["width"]
        assert abs(box["width"] - box["height"]) < 1, "square"
        command = page.locator("#command").inner_text()
        assert command.startswith(f"hafen provision enrol {served_hub} ")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, "enrolment-token-phone")
        assert page.evaluate("window.violations") == []
        assert not [c for c in complaints if "Content Security Policy" in c], complaints
        # The watch sees what the policy refuses: an inline style, as a QR code's could be.
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">')")
        page.wait_for_function("window.violations.length > 0", timeout=5000)
        assert [c for c in complaints if "Content Security Policy" in c]
        page.context.close()
