"""The dashboard in a real browser: Debian's headless chromium driven by Playwright, signed in
through the dashboard's own form; screenshots saved under ``test-artifacts/``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.hub import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("HAFEN_ARTIFACTS", Path(__file__).parent.parent.parent / "test-artifacts")
)
PHONE = {"width": 390, "height": 844}

#: For a test module that needs the browser.
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="make setup installs chromium")


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless chromium for the block (a module's fixture: starting it takes a second)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def signed_in_page(browser: Any, url: str, user: str, viewport: dict | None = None) -> Any:
    """A page in a fresh browser context, signed in through the dashboard's form at the hub
    served at ``url``."""
    page = browser.new_context(viewport=viewport or {"width": 1200, "height": 900}).new_page()
    page.goto(f"{url}/ui/")
    assert "/ui/sign-in" in page.url
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/ui/")
    return page


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


#: What the member's and employer's pages are held to: WCAG 2.1 A and AA, as axe-core checks.
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def accessibility_problems(page: Any) -> list[str]:
    """What axe-core (bundled with axe-playwright-python) finds wrong with the page as shown,
    one line per rule and element; [] when nothing. Run through the browser's debugging
    protocol, which the pages' policy does not govern (their own scripts stay the hub's)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
    return [
        f"{v['id']} ({v['impact']}): {node['target']}"
        for v in results.response["violations"]
        for node in v["nodes"]
    ]


def fits_the_screen(page: Any) -> bool:
    """Whether the page is no wider than its viewport (no sideways scrolling on a phone)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
