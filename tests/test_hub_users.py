"""Users, tokens and the operators' day views, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from hub import db
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from tests.support.booking import at, today
from tests.support.hub import PASSWORD, as_user
from tests.support.sites import add_sites


def test_every_route_but_sign_in_and_health_wants_credentials(api):
    # A device's enrolment carries its one-time token in the body, an invitation's link in
    # the path: that is their credential (tests/test_provisioning.py and
    # tests/test_hub_invitations.py refuse a used, expired and made-up one), and a member's
    # calendar feed, whose URL is its key (tests/test_hub_calendars.py).
    open_routes = {("/health", "GET"), ("/auth/token", "POST"), ("/enrol", "POST")}
    open_routes.add(("/auth/invitations/{token}", "POST"))
    open_routes.add(("/calendar/{token}.ics", "GET"))
    for path, operations in api.get("/openapi.json").json()["paths"].items():
        for method in operations:
            if (path, method.upper()) in open_routes:
                continue
            url = path.replace("{", "").replace("}", "")  # any value: auth comes first
            response = api.request(method, url)
            assert response.status_code == 401, (method, path, response.status_code)


def test_admins_add_users_and_give_operators_their_sites(api):
    admin = add_sites(api)
    body = {"username": "paul", "password": PASSWORD, "role": "site_operator", "sites": ["borna"]}
    assert api.post("/users", json=body, headers=admin).status_code == 201
    assert api.post("/users", json=body, headers=admin).status_code == 409
    paul = as_user(api, "paul")
    assert [s["id"] for s in api.get("/sites", headers=paul).json()] == ["borna"]
    assert api.get("/users", headers=paul).status_code == 403
    assert api.post("/users", json=body, headers=paul).status_code == 403
    bad = [
        ({**body, "username": "x" * 3, "password": "short"}, "password"),
        ({**body, "username": "rita", "sites": ["atlantis"]}, "atlantis"),
        ({**body, "username": "rita", "role": "technician"}, "only site operators"),
        ({**body, "username": "Rita Upper"}, "username"),
    ]
    for payload, named in bad:
        response = api.post("/users", json=payload, headers=admin)
        assert response.status_code == 422 and named in response.text, response.text
    changed = api.patch("/users/paul", json={"sites": ["leipzig-ost"]}, headers=admin)
    assert changed.json()["sites"] == ["leipzig-ost"]
    # The change shows at once, although tokens are cached for a few seconds.
    assert [s["id"] for s in api.get("/sites", headers=paul).json()] == ["leipzig-ost"]
    listed = {u["username"]: u for u in api.get("/users", headers=admin).json()}
    assert set(listed) == {"nadia", "olga", "paul", "tim"} and "password" not in str(listed)


def test_disabling_a_user_signs_them_out_and_the_last_admin_stays(api):
    admin = add_sites(api)
    olga = as_user(api, "olga")
    assert api.get("/sites", headers=olga).status_code == 200
    assert api.patch("/users/olga", json={"disabled": True}, headers=admin).status_code == 200
    assert api.get("/sites", headers=olga).status_code == 401
    signin = api.post("/auth/token", data={"username": "olga", "password": PASSWORD})
    assert signin.status_code == 401
    for change in ({"disabled": True}, {"role": "technician"}):
        response = api.patch("/users/nadia", json=change, headers=admin)
        assert response.status_code == 409, response.text
    assert api.patch("/users/nobody", json={}, headers=admin).status_code == 404


def test_api_tokens_are_shown_once_listed_without_secret_and_revocable(api):
    olga = as_user(api, "olga")
    made = api.post("/auth/tokens", json={"name": "kiosk", "days": 30}, headers=olga)
    assert made.status_code == 201, made.text
    token, public = made.json()["token"], made.json()["id"]
    kiosk = {"Authorization": f"Bearer {token}"}
    assert api.get("/auth/me", headers=kiosk).json()["username"] == "olga"
    listed = api.get("/auth/tokens", headers=olga).json()
    assert {t["name"] for t in listed} == {"sign-in", "kiosk"}
    assert token not in str(listed)
    nadia = as_user(api, "nadia")
    assert api.delete(f"/auth/tokens/{public}", headers=nadia).status_code == 404  # not hers
    assert api.delete(f"/auth/tokens/{public}", headers=olga).status_code == 204
    assert api.get("/auth/me", headers=kiosk).status_code == 401
    assert api.post("/auth/sign-out", headers=olga).status_code == 204
    assert api.get("/auth/me", headers=olga).status_code == 401


def _decision(site: str, member: str, at: datetime, allowed: bool = True) -> dict:
    return {
        "event_id": os.urandom(16).hex(),
        "site": site,
        "device": "door-1",
        "epoch": "00000000000000aa",
        "seq": int(at.timestamp()),
        "kind": "door.decision",
        "at": at,
        "data": {"allowed": allowed, "member": member, "reason": "ok"},
        "received_at": at,
    }


def test_operators_see_their_sites_visits_and_day_guests_only(api):
    admin = add_sites(api)
    for member in ("anna", "ben"):  # members of Leipzig-Ost: olga knows them by name
        api.post("/members", json={"id": member, "name": member.title()}, headers=admin)
        grant = {"sites": ["leipzig-ost"]}
        assert api.post(f"/members/{member}/grants", json=grant, headers=admin).status_code == 201
    # 2026-03-10 in Leipzig (UTC+1): anna twice, ben once and refused once; one late-evening
    # entry belongs to the next local day.
    day = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    rows = [
        _decision("leipzig-ost", "anna", day),
        _decision("leipzig-ost", "anna", day + timedelta(hours=6)),
        _decision("leipzig-ost", "ben", day + timedelta(hours=1)),
        _decision("leipzig-ost", "ben", day + timedelta(hours=2), allowed=False),
        _decision("leipzig-ost", "ben", datetime(2026, 3, 10, 23, 30, tzinfo=UTC)),
        _decision("borna", "anna", day),
    ]
    IngestStore(api.engine).write(Batch(events=rows))  # as ingest stores them: with roll-ups
    olga = as_user(api, "olga")
    seen = api.get("/sites/leipzig-ost/visits", params={"day": "2026-03-10"}, headers=olga)
    assert [(v["member"], v["name"], v["entries"]) for v in seen.json()] == [
        ("anna", "Anna", 2),
        ("ben", "Ben", 1),
    ]
    assert seen.json()[0]["last_entry"].startswith("2026-03-10T13:00")
    assert api.get("/sites/borna/visits", headers=olga).status_code == 404
    # A day guest a week ahead (a booking in the past is refused).
    guest_day = today() + timedelta(days=7)
    guest = {
        "member": "ben",
        "starts_at": at(guest_day, "08:00"),
        "ends_at": at(guest_day, "18:00"),
    }
    booked = api.post("/sites/leipzig-ost/bookings", json=guest, headers=olga)
    assert booked.status_code == 201, booked.text
    api.post("/sites/borna/bookings", json=guest, headers=admin)
    guests = api.get("/sites/leipzig-ost/bookings", params={"day": str(guest_day)}, headers=olga)
    assert [(g["member"], g["name"]) for g in guests.json()] == [("ben", "Ben")]
    next_day = str(guest_day + timedelta(days=1))
    other_day = api.get("/sites/leipzig-ost/bookings", params={"day": next_day}, headers=olga)
    assert other_day.json() == []
    assert api.get("/sites/borna/bookings", headers=olga).status_code == 404


def test_the_overview_is_shared_for_a_second_and_filtered_per_caller(api):
    import time

    admin = add_sites(api)
    for site in ("leipzig-ost", "borna"):
        for device in ("door-1", "door-2"):
            response = api.post(f"/sites/{site}/devices", json={"id": device}, headers=admin)
            assert response.status_code == 201
    now = datetime.now(UTC)
    state = {"online": True, "session": 1, "acl_version": 3, "received_at": now}
    with api.engine.begin() as conn:
        conn.execute(
            db.device_states.insert(),
            [
                {**state, "site": "leipzig-ost", "device": "door-1"},
                {**state, "site": "borna", "device": "door-1", "online": False},
            ],
        )
        conn.execute(
            db.acl_versions.insert(),
            {
                "site": "leipzig-ost",
                "version": 4,
                "kind": "snapshot",
                "body": b"",
                "message_bytes": 0,
                "published_at": now,
            },
        )
    everything = {s["site"]: s for s in api.get("/overview", headers=admin).json()}
    assert everything["leipzig-ost"]["online"] == 1 and everything["leipzig-ost"]["devices"] == 2
    assert everything["leipzig-ost"]["lagging"] == 2  # door-1 has 3 of 4; door-2 nothing
    assert everything["borna"]["online"] == 0 and everything["borna"]["acl_version"] is None
    olga = as_user(api, "olga")
    assert [s["site"] for s in api.get("/overview", headers=olga).json()] == ["leipzig-ost"]
    with api.engine.begin() as conn:
        conn.execute(db.device_states.update().values(online=True))
    time.sleep(1.1)
    borna = [s for s in api.get("/overview", headers=admin).json() if s["site"] == "borna"]
    assert borna[0]["online"] == 1


def test_times_in_any_offset_are_kept_as_the_same_instants(api):
    """SQLite keeps only wall-clock fields: the hub must store UTC whatever offset came in."""
    admin = add_sites(api)
    api.post("/members", json={"id": "ben", "name": "Ben"}, headers=admin)
    day = today() + timedelta(days=7)  # a booking in the past is refused
    body = {
        "member": "ben",
        "starts_at": f"{day}T10:00:00+05:00",  # 05:00 UTC
        "ends_at": f"{day}T06:00:00+00:00",  # an hour later, though "earlier" on the wall
    }
    booked = api.post("/sites/leipzig-ost/bookings", json=body, headers=admin)
    assert booked.status_code == 201, booked.text
    cancelled = api.delete(f"/bookings/{booked.json()['id']}", headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["starts_at"].startswith(f"{day}T05:00:00")
