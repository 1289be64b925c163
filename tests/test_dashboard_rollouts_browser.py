"""The rollout pages in a real browser (Debian's chromium, Playwright) on a phone: a network
admin starts a rollout with the form, follows it, pauses it and aborts it after the
confirmation; each page fits the screen (its wide tables scroll by themselves), axe-core finds
nothing, and nothing breaks the pages' strict content policy."""

from __future__ import annotations

from typing import Any

import pytest

from hub import db
from hub.app import create_app
from hub.auth import Role
from hub.services.rollout_driver import advance
from tests.support.browser import (
    PHONE,
    accessibility_problems,
    chromium,
    fits_the_screen,
    needs_chromium,
    shoot,
    signed_in_page,
)
from tests.support.enrolling import served
from tests.support.hub import add_user
from tests.support.rollouts import add_door, add_release, no_send, report, steps

pytestmark = needs_chromium

V = "1.4.0"


@pytest.fixture
def hub(tmp_path):
    """A hub served by uvicorn over SQLite with release 1.4.0, nadia, and doors at two
    sites with long names; yields (its URL, its store)."""
    engine = db.connect(f"sqlite:///{tmp_path / 'hub.db'}")
    add_release(engine, V)
    for n in range(1, 7):
        add_door(engine, "leipzig-ost", f"eingangstuer-hof-{n}")
    add_door(engine, "borna", "door-1")
    add_user(engine, Role.NETWORK_ADMIN)
    with served(create_app(engine)) as url:
        yield url, engine
    engine.dispose()


def looked_at(page: Any, name: str) -> None:
    """Fits a phone, nothing for axe-core, no complaint about the policy; a screenshot."""
    assert fits_the_screen(page), f"{name} is wider than the phone"
    assert accessibility_problems(page) == [], name
    shoot(page, name)


def test_an_admin_starts_follows_and_aborts_a_rollout_on_a_phone(hub):
    url, engine = hub
    with chromium() as browser:
        page = signed_in_page(browser, url, "nadia", viewport=PHONE)
        complaints: list[str] = []
        page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
        page.get_by_role("link", name="Rollouts").click()
        page.wait_for_url("**/ui/rollouts")
        page.get_by_label("Only the doors of these sites:").check()
        page.get_by_label("leipzig-ost").check()
        page.get_by_label("Stages").fill("1,50%,100%")
        looked_at(page, "rollouts-start-phone")
        page.get_by_role("button", name="Start the rollout").click()
        page.wait_for_url("**/ui/rollouts/1")
        assert page.locator("#state").inner_text() == "running"
        assert len(steps(engine, 1)) == 6

        # The canary rolls back: the rollout pauses by itself, and the page says why.
        advance(engine, no_send)
        canary = next(d for d, step in steps(engine, 1).items() if step == "ordered")
        report(engine, 1, canary, "rolled_back", V, running="1.3.0", detail="gate: no reader")
        advance(engine, no_send)
        page.get_by_role("link", name="Reload").click()
        assert page.locator("#state").inner_text() == "paused"
        door = page.locator(f'tr[data-device="{canary}"]')
        assert door.locator(".badge.step").inner_text() == "rolled back"
        assert "gate: no reader" in door.inner_text()
        looked_at(page, "rollout-paused-phone")

        page.get_by_role("button", name="Resume").click()
        assert page.locator("#state").inner_text() == "running"
        page.get_by_role("link", name="Abort…").click()
        page.wait_for_url("**/ui/rollouts/1/abort")
        looked_at(page, "rollout-abort-phone")
        page.get_by_role("button", name="Abort the rollout").click()
        page.wait_for_url("**/ui/rollouts/1")
        assert page.locator("#state").inner_text() == "aborted"
        assert page.get_by_role("button", name="Pause").count() == 0
        page.goto(f"{url}/ui/rollouts")
        assert page.locator('tr[data-rollout="1"] [data-count="failed"]').inner_text() == "1"
        looked_at(page, "rollouts-list-phone")
        assert not [c for c in complaints if "Content Security Policy" in c], complaints
        page.context.close()
