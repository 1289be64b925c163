"""Tap to open overview page: a real edge taps, headless chromium watches the overview change.

The edge agent runs on mock pins with nfcpy's UDP reader and a real mosquitto; the hub's ingest
worker writes into the benchmark's big store, and ``hafen hub serve`` pushes the overview of
all 500 sites over server-sent events. The page's own clock marks when the site's count of
entries changed; a plain MQTT subscriber marks when the event reached the broker (the floor).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
import paho.mqtt.client as mqtt
from dashboard_http import serving
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion
from seed_dashboard import PASSWORD
from sqlalchemy import delete

from hafen import protocol
from hub import db
from sim.broker import LocalBroker
from tests.support.network import TestHub, connected_edge
from tests.support.waiting import wait_for

SITE = "site-000"
UID = bytes.fromhex("04B1B2C3D4E5F6")
WATCH = """() => {
  const el = document.querySelector('[data-site="site-000"] [data-field="entries_today"]');
  window.seen = [];
  new MutationObserver(() => window.seen.push([Date.now(), Number(el.textContent)]))
    .observe(el, {childList: true, characterData: true, subtree: true});
}"""


def broker_clock(port: int) -> tuple[mqtt.Client, list[float]]:
    """A subscriber that notes when each door decision of the site reached the broker."""
    arrivals: list[float] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-watch")

    def on_message(_client, _userdata, message) -> None:
        topic = protocol.parse_device_topic(message.topic)
        if topic and topic.site == SITE and topic.name == protocol.EventKind.ACCESS_DECISION:
            arrivals.append(time.time())

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(protocol.ALL_EVENTS, qos=1)
    client.loop_start()
    return client, arrivals


def bench_live(url: str, engine, taps: int, line: Callable) -> None:
    from playwright.sync_api import sync_playwright

    Device.pin_factory = MockFactory()
    with (
        tempfile.TemporaryDirectory(prefix="hafen-live-") as name,
        LocalBroker(Path(name) / "broker") as broker,
    ):
        hub = TestHub(Path(name), broker, url=url).start()
        hub.add_member("tapper", UID)
        with engine.begin() as conn:  # the seeded list versions have no body to build on
            conn.execute(delete(db.acl_versions).where(db.acl_versions.c.site == SITE))
        hub.publisher.publish_site(SITE)
        watcher, arrivals = broker_clock(broker.port)
        try:
            with connected_edge(Path(name), hub, site=SITE, device="door-1") as (agent, card):
                assert wait_for(lambda: agent.acl_updater.version >= 1, 30)
                with serving(url) as base, sync_playwright() as p:
                    browser = p.chromium.launch(
                        executable_path="/usr/bin/chromium",
                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                    )
                    page = browser.new_page()
                    page.goto(f"{base}/ui/")
                    page.fill("input[name=username]", "nadia")
                    page.fill("input[name=password]", PASSWORD)
                    page.click("button[type=submit]")
                    page.wait_for_selector("#live-state[data-state=live]", timeout=30_000)
                    page.evaluate(WATCH)
                    shown, reached = tap_and_watch(page, card, arrivals, taps)
                    browser.close()
        finally:
            watcher.loop_stop()
            hub.stop()
            Device.pin_factory.close()
    line("tap to broker (MQTT floor)", reached)
    line("tap to open overview page (browser)", shown)
    ratio = sorted(shown)[len(shown) // 2] / max(sorted(reached)[len(reached) // 2], 1e-9)
    print(f"  {'page / broker, p50':44} {ratio:8.1f} x")


def tap_and_watch(page, card, arrivals: list[float], taps: int) -> tuple[list[float], list[float]]:
    """Tap ``taps`` times; ms from each card read to the page's change and to the broker."""
    offset = time.time() - time.monotonic()
    shown, reached = [], []
    for _ in range(taps):
        before = page.evaluate(
            "Number(document.querySelector("
            '\'[data-site="site-000"] [data-field="entries_today"]\').textContent)'
        )
        heard = len(arrivals)
        read_at = card.present(UID)
        assert read_at is not None, "the reader did not read the card"
        tapped = (read_at + offset) * 1000
        page.wait_for_function(
            "n => window.seen.some(([, v]) => v > n)", arg=before, timeout=10_000
        )
        changed = page.evaluate("n => window.seen.find(([, v]) => v > n)[0]", before)
        shown.append(changed - tapped)
        assert wait_for(lambda h=heard: len(arrivals) > h, 5)
        reached.append(arrivals[heard] * 1000 - tapped)
        page.evaluate("window.seen = []")
        time.sleep(1.0)  # the door relocks and the reader lets the card go
    return shown, reached
