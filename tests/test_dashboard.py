"""The dashboard's pages over HTTP, on SQLite and PostgreSQL: sign-in, who sees what, the
live stream, charts, and that nothing is loaded from anywhere but the hub."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from hub import db
from hub.app import create_app
from hub.auth import Role
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from hub.web import pages
from tests.support.events import event, sample, tap
from tests.support.hub import PASSWORD, add_staff

#: For a live feed that is fed by hand and never reads a store.
NO_STORE = cast(Engine, None)

PAGES = ["/ui/", "/ui/sites/a", "/ui/fleet", "/ui/reports", "/ui/reports.csv"]


@pytest.fixture
def hub(engine):
    """The hub's store on each database with two sites (a door each), a member, nadia, olga
    (operator of a) and tim, and today's taps, samples and a fault at site a; yields the
    store and the ingest store that wrote them."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(db.sites),
            [
                {"id": "a", "timezone": "Europe/Berlin", "name": "Hafen Nord", "capacity": 12},
                {"id": "b", "timezone": "Europe/Berlin", "name": "Hafen Süd", "capacity": 8},
            ],
        )
        conn.execute(
            insert(db.devices),
            [{"site": s, "id": "door-1", "created_at": now} for s in ("a", "b")],
        )
        conn.execute(insert(db.members).values(id="ann", name="Ann Example", blocked=False))
    add_staff(engine, operator_sites=["a"])
    ingest = IngestStore(engine)
    samples = [sample("a", now - timedelta(minutes=5 * i), 3) for i in range(24)]
    for s in samples[:3]:
        s["data"]["co2"] = {"main": 1450}
    denied = tap("a", None, now - timedelta(minutes=20), allowed=False)
    fault = event("a", "device.fault", now - timedelta(minutes=10), {"component": "co2.main"})
    fault["data"]["fault"] = "checksum"
    # Earlier today at the site, whatever the hour: halfway between local midnight and now.
    local = now.astimezone(ZoneInfo("Europe/Berlin"))
    today = now - (local - local.replace(hour=0, minute=0, second=0, microsecond=0)) / 2
    taps = [tap("a", "ann", today), denied, fault]
    ingest.write(Batch(events=[*taps, *samples]))
    return engine, ingest


def dashboard_session(engine, name: str) -> TestClient:
    """A client signed in through the dashboard's form: it carries the session cookie."""
    client = TestClient(create_app(engine))
    reply = client.post(
        "/ui/sign-in",
        data={"username": name, "password": PASSWORD, "next": "/ui/"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    return client


def test_every_page_asks_for_sign_in_and_sends_back_after(hub):
    engine, _ = hub
    client = TestClient(create_app(engine))
    for path in [*PAGES, "/ui/live", "/ui/sites/a/today.svg", "/ui/sites/a/week.svg"]:
        reply = client.get(path, follow_redirects=False)
        assert reply.status_code == 303, path
        assert reply.headers["location"] == f"/ui/sign-in?next={path}"
    wrong = client.post("/ui/sign-in", data={"username": "nadia", "password": "nope-nope-nope"})
    assert wrong.status_code == 401
    assert "Wrong name or password." in wrong.text
    assert "hafen_session" not in client.cookies
    reply = client.post(
        "/ui/sign-in",
        data={"username": "nadia", "password": PASSWORD, "next": "/ui/fleet"},
        follow_redirects=False,
    )
    assert reply.headers["location"] == "/ui/fleet"
    cookie = reply.headers["set-cookie"]
    for flag in ("HttpOnly", "SameSite=strict", "Path=/ui"):
        assert flag.lower() in cookie.lower()


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/docs", "/ui\\x"])
def test_sign_in_never_sends_anywhere_but_the_dashboard(hub, target):
    engine, _ = hub
    client = TestClient(create_app(engine))
    reply = client.post(
        "/ui/sign-in",
        data={"username": "nadia", "password": PASSWORD, "next": target},
        follow_redirects=False,
    )
    assert reply.headers["location"] == "/ui/"


def test_pages_load_only_the_hubs_own_assets_under_a_strict_policy(hub):
    engine, _ = hub
    client = dashboard_session(engine, "nadia")
    for path in PAGES[:-1]:
        reply = client.get(path)
        assert reply.status_code == 200, path
        assert "default-src 'self'" in reply.headers["content-security-policy"]
        for url in re.findall(r'(?:src|href)="([^"]+)"', reply.text):
            assert url.startswith(("/", "#")), (path, url)  # the hub's own, or this page's
    for asset in ("hafen.css", "live.js", "actions.js", "favicon.svg"):
        text = client.get(f"/ui/static/{asset}").text
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), asset


def test_the_hub_has_an_icon_where_browsers_look_for_one(hub):
    engine, _ = hub
    client = dashboard_session(engine, "nadia")
    page = client.get("/ui/")
    assert '<link rel="icon" href="/ui/static/favicon.svg"' in page.text
    icon = client.get("/favicon.ico")  # asked for by every browser, whatever a page links
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")


def test_the_site_page_names_members_only_for_roles_that_see_people(hub):
    engine, _ = hub
    admin = dashboard_session(engine, "nadia").get("/ui/sites/a").text
    assert "Ann Example" in admin
    assert "denied: unknown card" in admin
    assert "1450 ppm" in admin and "ventilate" in admin
    assert "today.svg" in admin and "week.svg" in admin
    assert "c" * 32 not in admin  # never a card hash
    tech = dashboard_session(engine, "tim")
    page = tech.get("/ui/sites/a").text
    assert "Ann Example" not in page and "today.svg" not in page
    assert "co2.main: checksum" in page  # the devices' own events, not who came or went
    assert "denied: unknown card" not in page and ">entry<" not in page
    assert tech.get("/ui/sites/a/today.svg").status_code == 403
    assert tech.get("/ui/reports").status_code == 403
    overview = tech.get("/ui/").text
    assert "Hafen Nord" in overview and "people" not in overview


def test_an_operator_sees_only_their_own_sites(hub):
    engine, _ = hub
    client = dashboard_session(engine, "olga")
    admin = TestClient(client.app)  # the same hub: B's charts already drawn, and cached
    admin.post("/ui/sign-in", data={"username": "nadia", "password": PASSWORD})
    for chart in ("today", "week"):
        assert admin.get(f"/ui/sites/b/{chart}.svg").status_code == 200
    overview = client.get("/ui/").text
    assert "Hafen Nord" in overview and "Hafen Süd" not in overview
    for path in ("/ui/sites/b", "/ui/sites/b/today.svg", "/ui/sites/b/week.svg"):
        assert client.get(path).status_code == 404, path
    assert client.get("/ui/sites/nowhere").status_code == 404
    fleet = client.get("/ui/fleet").text
    assert "<td>a</td>" in fleet and "<td>b</td>" not in fleet
    csv = client.get("/ui/reports.csv").text.splitlines()
    assert len(csv) == 2 and csv[1].startswith("a,Hafen Nord,")


def test_charts_are_svg_pictures_of_the_sites_figures(hub):
    engine, _ = hub
    client = dashboard_session(engine, "nadia")
    for chart in ("today", "week"):
        reply = client.get(f"/ui/sites/a/{chart}.svg")
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "image/svg+xml"
        assert reply.content.lstrip().startswith(b"<?xml") and b"<svg" in reply.content


def test_the_live_stream_pushes_each_change_to_the_sites_a_user_may_see(hub, monkeypatch):
    engine, ingest = hub
    monkeypatch.setattr(pages, "STREAM_SECONDS", 3.0)
    client = dashboard_session(engine, "olga")
    pushed = []
    with client.stream("GET", "/ui/live") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                pushed.append(json.loads(line[6:]))
                if len(pushed) == 1:  # a new tap while the page is open
                    ingest.write(Batch(events=[tap("a", "ann", datetime.now(UTC))]))
    assert [s["site"] for s in pushed[0]] == ["a"]
    assert pushed[0][0]["entries_today"] == 1 and pushed[0][0]["air"] == "ventilate"
    assert pushed[-1][0]["entries_today"] == 2
    assert pushed[0][0]["count"] == 3 and pushed[0][0]["online"] == 0


def test_a_site_pages_stream_carries_that_site_only(hub, monkeypatch):
    engine, _ = hub
    monkeypatch.setattr(pages, "STREAM_SECONDS", 0.5)
    client = dashboard_session(engine, "nadia")
    for site, expected in (("a", ["a"]), ("b", ["b"]), (None, ["a", "b"])):
        params = {"site": site} if site else {}
        with client.stream("GET", "/ui/live", params=params) as stream:
            data = next(line for line in stream.iter_lines() if line.startswith("data: "))
        assert sorted(s["site"] for s in json.loads(data[6:])) == expected
    operator = dashboard_session(engine, "olga")
    with operator.stream("GET", "/ui/live", params={"site": "b"}) as stream:
        data = next(line for line in stream.iter_lines() if line.startswith("data: "))
    assert json.loads(data[6:]) == [], "another's site: nothing"
    page = client.get("/ui/sites/a").text
    assert '<script src="/ui/static/live.js">' in page and 'data-site="a"' in page


def test_signing_out_ends_the_session(hub):
    engine, _ = hub
    client = dashboard_session(engine, "nadia")
    cookie = client.cookies["hafen_session"]
    reply = client.post("/ui/sign-out", follow_redirects=False)
    assert reply.headers["location"] == "/ui/sign-in"
    client.cookies.set("hafen_session", cookie, path="/ui")
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_a_link_from_elsewhere_keeps_the_session_and_the_page_asked_for(hub):
    engine, _ = hub
    client = TestClient(create_app(engine))
    reply = client.get("/ui/reports?month=2026-10", follow_redirects=False)
    assert reply.headers["location"] == "/ui/sign-in?next=/ui/reports%3Fmonth%3D2026-10"
    assert "set-cookie" not in reply.headers, "no cookie sent: none to clear"
    form = {"username": "nadia", "password": PASSWORD, "next": "/ui/reports?month=2026-10"}
    assert (
        client.post("/ui/sign-in", data=form, follow_redirects=False).headers["location"]
        == "/ui/reports?month=2026-10"
    )
    client.cookies.set("hafen_session", "hft_forged", path="/ui")
    refused = client.get("/ui/", follow_redirects=False)
    assert 'hafen_session=""' in refused.headers["set-cookie"], "a refused cookie is cleared"


def test_forms_posted_from_another_site_are_refused(hub):
    engine, _ = hub
    client = TestClient(create_app(engine))
    form = {"username": "nadia", "password": PASSWORD}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        reply = client.post("/ui/sign-in", data=form, headers=headers, follow_redirects=False)
        assert reply.status_code == 403 and "another site" in reply.text
        assert "hafen_session" not in reply.headers.get("set-cookie", "")
    for headers in (
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        {"Origin": "https://testserver"},  # plain http behind a TLS proxy: no Sec-Fetch-Site
        {"Origin": "https://hub.example", "X-Forwarded-Host": "hub.example"},
    ):
        ours = client.post("/ui/sign-in", data=form, headers=headers, follow_redirects=False)
        assert ours.status_code == 303, headers
    proxied = TestClient(create_app(engine, public_url="https://hafen.example.org"))
    behind = {"Origin": "https://hafen.example.org", "Host": "127.0.0.1:8080"}
    assert proxied.post("/ui/sign-in", data=form, headers=behind).status_code == 200
    assert proxied.post("/ui/sign-in", data=form, headers={"Origin": "null"}).status_code == 403


def test_signing_in_again_ends_the_old_session(hub):
    engine, _ = hub
    client = dashboard_session(engine, "nadia")
    old = client.cookies["hafen_session"]
    client.post("/ui/sign-in", data={"username": "nadia", "password": PASSWORD})
    assert client.cookies["hafen_session"] != old
    stale = TestClient(client.app, cookies={"hafen_session": old})
    assert stale.get("/ui/", follow_redirects=False).status_code == 303


def test_pages_are_not_cached_and_errors_are_pages(hub):
    engine, _ = hub
    client = dashboard_session(engine, "olga")
    for path in ("/ui/", "/ui/sites/a", "/ui/reports.csv"):
        assert client.get(path).headers["cache-control"] == "no-store", path
    missing = client.get("/ui/sites/b")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "Back to the start" in missing.text
    bad = client.get("/ui/reports?month=last-month")
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]
    assert client.get("/sites/b").headers["content-type"] == "application/json"


def test_the_live_stream_ends_soon_after_sign_out(hub, monkeypatch):
    engine, _ = hub
    monkeypatch.setattr(pages, "RECHECK_SECONDS", 0.2)
    client = dashboard_session(engine, "nadia")
    from hub.auth import revoke_token

    started = time.monotonic()
    with client.stream("GET", "/ui/live") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                revoke_token(engine, client.cookies["hafen_session"])
                cast(FastAPI, client.app).state.principals.clear()
    assert time.monotonic() - started < 5, "the stream ended well before its 60 s"


def test_a_chart_is_fetched_and_drawn_once_however_many_ask_at_once():
    import threading

    from hub.web.charts import ChartCache

    cache, fetched, pictures = ChartCache(), [], []
    gate = threading.Event()

    def fetch():
        gate.wait(1)
        fetched.append(1)
        return 7

    def ask():
        pictures.append(cache.get(("today", "a"), 60, fetch, lambda n: b"<svg>%d</svg>" % n))

    askers = [threading.Thread(target=ask) for _ in range(8)]
    for t in askers:
        t.start()
    gate.set()
    for t in askers:
        t.join()
    assert fetched == [1] and pictures == [b"<svg>7</svg>"] * 8

    def no_such_site():
        raise LookupError("no site")

    with pytest.raises(LookupError):
        cache.get(("today", "nowhere"), 60, no_such_site, bytes)
    assert ("today", "nowhere") not in cache._flights, "a refused key keeps nothing"


def test_streams_get_only_what_changed_encoded_once_per_kind_of_viewer(monkeypatch):
    from hub.auth import Principal
    from hub.web import live

    feed = live.LiveFeed(engine=NO_STORE)
    site = lambda s, n=0: live.SiteLive(s, s.upper(), 1, 1, 0, None, entries_today=n)  # noqa: E731
    admin = Principal(1, "admin", Role.NETWORK_ADMIN, frozenset())
    operator = Principal(2, "op", Role.SITE_OPERATOR, frozenset({"b"}))
    feed._publish([site("a"), site("b"), site("c")])
    first, full = feed.payload(admin, None, -1)
    assert [s["site"] for s in json.loads(full)] == ["a", "b", "c"]
    feed._publish([site("a"), site("b", 1), site("c")])
    now, delta = feed.payload(admin, None, first)
    assert now == first + 1 and [s["site"] for s in json.loads(delta)] == ["b"]
    assert json.loads(feed.payload(operator, None, first)[1])[0]["entries_today"] == 1
    assert json.loads(feed.payload(operator, "a", first)[1]) == [], "not theirs"
    encoded: list[int] = []

    def counting_dumps(sites: list, **_: object) -> str:
        encoded.append(len(sites))
        return ""

    monkeypatch.setattr(live.json, "dumps", counting_dumps)
    for _ in range(50):  # fifty admins' streams at the same point: one encoding
        feed.payload(admin, None, first)
    assert encoded == [], "encoded above already"
    for n in range(2, 2 + live.CHANGES_KEPT + 1):
        feed._publish([site("a"), site("b", n), site("c")])
    for _ in range(50):
        feed.payload(admin, None, first)
    assert encoded == [3], "too far behind: the whole picture, encoded once"


async def _wait_for_change(feed, seen: int, timeout: float) -> float:
    import asyncio

    started = time.monotonic()
    await asyncio.gather(feed.changed(seen, timeout), asyncio.to_thread(_publish_soon, feed))
    return time.monotonic() - started


def _publish_soon(feed) -> None:
    from hub.web import live

    time.sleep(0.1)
    feed._publish([live.SiteLive("z", "Z", 1, 1, 0, None)])


def test_a_waiting_stream_wakes_when_the_picture_changes_not_at_its_timeout():
    import asyncio

    from hub.web import live

    feed = live.LiveFeed(engine=NO_STORE)
    took = asyncio.run(_wait_for_change(feed, feed.generation, 5.0))
    assert 0.09 < took < 1.0
