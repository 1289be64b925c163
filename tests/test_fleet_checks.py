"""The fleet page, a site's doors and the fleet API show what should worry whoever looks after
the doors (issue 13): unverified doors, session take-overs, faults and forged states; each
role sees only what it may. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from hub import db
from hub.app import create_app
from hub.list_acks import UNVERIFIED_AFTER
from tests.support.hub import PASSWORD, add_staff, as_user

FAULT = "cannot open reader usb <script>alert(1)</script>"


@pytest.fixture
def fleet(engine):
    """Sites a and b. a: door-1 still on version 1 though 2 went out long ago (unverified),
    its session taken over twice, a reader fault and three forged states; door-2 on version 2
    while 3 went out a moment ago (within the bound); sensor-1 that never reported (a sensor
    holds no list). b: door-1 with five forged states, its first list just out."""
    now = datetime.now(UTC)
    long_ago = now - UNVERIFIED_AFTER - timedelta(minutes=5)
    with engine.begin() as conn:
        conn.execute(insert(db.sites), [{"id": s, "timezone": "Europe/Berlin"} for s in "ab"])
        conn.execute(
            insert(db.devices),
            [
                {"site": site, "id": device, "kind": kind, "created_at": now}
                for site, device, kind in (
                    ("a", "door-1", "door"),
                    ("a", "door-2", "door"),
                    ("a", "sensor-1", "sensor"),
                    ("b", "door-1", "door"),
                )
            ],
        )
        conn.execute(
            insert(db.acl_versions),
            [
                {"site": site, "version": version, "kind": "snapshot", "body": b"",
                 "message_bytes": 0, "published_at": at}
                for site, version, at in (
                    ("a", 1, long_ago), ("a", 2, long_ago), ("a", 3, now), ("b", 1, now),
                )
            ],
        )  # fmt: skip
        state = {"online": True, "session": 1, "received_at": now}
        for row in (
            {"site": "a", "device": "door-1", "acl_version": 1, "takeovers": 2,
             "faults": {"reader": FAULT}, "refused_states": 3, "refused_at": now},
            {"site": "a", "device": "door-2", "acl_version": 2},
            {"site": "b", "device": "door-1", "acl_version": None, "refused_states": 5,
             "refused_at": now - timedelta(hours=3)},
        ):  # fmt: skip
            conn.execute(insert(db.device_states).values(**state, **row))
    add_staff(engine, operator_sites=["a"])
    return engine


def by_device(rows: list[dict]) -> dict[str, dict]:
    return {f"{r['site']}/{r['device']}": r for r in rows}


def test_the_fleet_api_shows_each_devices_checks(fleet):
    with TestClient(create_app(fleet)) as api:
        assert api.get("/fleet").status_code == 401
        rows = api.get("/fleet", headers=as_user(api, "nadia")).json()
    devices = by_device(rows)
    assert set(devices) == {"a/door-1", "a/door-2", "a/sensor-1", "b/door-1"}
    worried = devices["a/door-1"]
    assert worried["unverified"] is True and worried["unconfirmed_version"] == 2
    assert worried["takeovers"] == 2 and worried["faults"] == {"reader": FAULT}
    assert worried["refused_states"] == 3 and worried["refused_at"] is not None
    assert worried["warnings"] == 3 and worried["lag"] == 2
    # Behind, but the newest list went out within the bound: not (yet) unverified.
    assert devices["a/door-2"]["unverified"] is False and devices["a/door-2"]["lag"] == 1
    assert devices["a/sensor-1"]["unverified"] is False and devices["a/sensor-1"]["online"] is None
    assert devices["b/door-1"]["unverified"] is False and devices["b/door-1"]["refused_states"] == 5
    # Online doors with warnings before quiet ones.
    assert [f"{r['site']}/{r['device']}" for r in rows][1:3] == ["a/door-1", "b/door-1"]


def test_each_role_sees_the_fleet_of_its_sites(fleet):
    with TestClient(create_app(fleet)) as api:
        olga = api.get("/fleet", headers=as_user(api, "olga")).json()
        tim = api.get("/fleet", headers=as_user(api, "tim")).json()
    assert set(by_device(olga)) == {"a/door-1", "a/door-2", "a/sensor-1"}
    assert set(by_device(tim)) == {"a/door-1", "a/door-2", "a/sensor-1", "b/door-1"}


def signed_in(engine, name: str) -> TestClient:
    client = TestClient(create_app(engine))
    reply = client.post(
        "/ui/sign-in",
        data={"username": name, "password": PASSWORD, "next": "/ui/"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    return client


def warnings_of(page: str, device: str) -> str:
    """The warnings section's entry of ``device`` (site/device)."""
    found = re.search(rf'<li data-device="{device}">(.*?)</ul>\s*</li>', page, re.S)
    assert found, f"no warnings for {device}"
    return found.group(1)


def test_the_fleet_page_warns_of_unverified_doors_take_overs_and_forged_states(fleet):
    page = signed_in(fleet, "tim").get("/ui/fleet").text
    door = warnings_of(page, "a/door-1")
    assert "Unverified" in door and "access list v2" in door
    assert "3 forged states refused" in door and "taken over 2 times" in door
    assert "5 forged states refused" in warnings_of(page, "b/door-1")
    assert 'data-device="a/door-2"' in page and '<li data-device="a/door-2">' not in page
    # Faults are shown as text, never as markup.
    assert "reader: cannot open reader usb &lt;script&gt;" in page and "<script>alert" not in page
    row = re.search(r'<tr [^>]*data-device="a/door-1".*?</tr>', page, re.S)
    assert row and 'data-check="unverified"' in row.group(0)
    assert 'data-check="takeovers"' in row.group(0) and 'data-check="forged"' in row.group(0)


def test_an_operator_is_warned_of_their_own_sites_only(fleet):
    page = signed_in(fleet, "olga").get("/ui/fleet").text
    assert "a/door-1" in page and "b/door-1" not in page


def test_a_sites_page_shows_its_doors_checks(fleet):
    page = signed_in(fleet, "nadia").get("/ui/sites/a").text
    door_1 = re.search(r'<p [^>]*data-device="door-1".*?</p>', page, re.S)
    door_2 = re.search(r'<p [^>]*data-device="door-2".*?</p>', page, re.S)
    assert door_1 and door_2
    for check in ("unverified", "forged", "takeovers", "fault"):
        assert f'data-check="{check}"' in door_1.group(0)
    assert "data-check" not in door_2.group(0)
