"""The fleet page's devices (issue 14): a technician adds a device and gets its one-time
token as text, as the command for the Pi and as a QR code; revokes one after a confirmation;
sees when each enrolled and which are revoked. Site operators get none of it. On SQLite and
PostgreSQL; the whole way, to a Pi's enrolment over TLS, in test_dashboard_enrolment.py."""

from __future__ import annotations

import html
import logging
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from hub import db
from hub.app import create_app
from hub.services.enrolment import token_hash
from tests.support.enrolling import authority_without_broker, fleet_row, shown_command
from tests.support.hub import PASSWORD, add_staff, as_user

HUB_URL = "https://hub.example.org"
ADD = "/ui/fleet/devices"
REVOKE = "/ui/sites/a/devices/door-1/revoke"
#: What every form of a signed-in browser posts, as a browser sends it from the hub's page.
FORM = {"site": "a", "device": "front-door", "kind": "door", "valid_minutes": "60"}


@pytest.fixture
def hub(engine, tmp_path):
    """Sites a and b (door-1 at a), nadia, olga (operator of a) and tim; the hub's app with a
    device authority whose broker is not there, and its public URL configured."""
    with engine.begin() as conn:
        conn.execute(
            insert(db.sites),
            [
                {"id": "a", "timezone": "Europe/Berlin", "name": "Hafen Nord"},
                {"id": "b", "timezone": "Europe/Berlin", "name": "Hafen Süd"},
            ],
        )
        conn.execute(insert(db.devices).values(site="a", id="door-1", created_at=datetime.now(UTC)))
    add_staff(engine, operator_sites=["a"])
    authority = authority_without_broker(tmp_path)
    return create_app(engine, public_url=HUB_URL, authority=authority)


def signed_in(app, name: str) -> TestClient:
    client = TestClient(app)
    reply = client.post("/ui/sign-in", data={"username": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return client


def tokens(engine, device: str) -> list[str]:
    t = db.enrolment_tokens.c
    with engine.connect() as conn:
        return list(conn.scalars(select(t.token_hash).where(t.device == device)))


def test_a_technician_adds_a_device_and_is_shown_its_token_once(hub, engine, caplog):
    tim = signed_in(hub, "tim")
    fleet = tim.get("/ui/fleet").text
    assert 'action="/ui/fleet/devices"' in fleet
    assert '<option value="a">Hafen Nord (a)</option>' in fleet and 'value="b"' in fleet
    caplog.set_level(logging.DEBUG)
    reply = tim.post(ADD, data=FORM)
    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in reply.headers["content-security-policy"]
    command = shown_command(reply.text)
    assert command.startswith(f"hafen provision enrol {HUB_URL} ")
    token = command.rsplit(" ", 1)[1]
    assert re.fullmatch(r"[a-z2-7]{52}", token)
    assert f'<code id="token" class="token">{token}</code>' in reply.text
    assert tokens(engine, "front-door") == [token_hash(token)], "kept only as its hash"
    # The QR code is markup of the page itself: no XML declaration, no style, no script.
    svg = re.search(r"<svg .*?</svg>", reply.text, re.S)
    assert svg and 'class="qr"' in svg.group(0) and "<path" in svg.group(0)
    assert "<?xml" not in reply.text and "style=" not in reply.text
    assert "<script" not in reply.text
    assert "front-door" in reply.text and "UTC" in reply.text
    assert caplog.records, "the request was logged"
    assert token not in caplog.text, "no log line names the token"
    # A second token for the device ends the first; the fleet shows it, not yet enrolled.
    again = tim.post(ADD, data=FORM)
    assert again.status_code == 200 and tokens(engine, "front-door") != [token_hash(token)]
    row = fleet_row(tim.get("/ui/fleet").text, "a/front-door")
    assert "not yet" in row and 'data-revoked="yes"' not in row


def test_an_operator_sees_no_controls_and_forms_from_elsewhere_are_refused(hub, engine):
    olga = signed_in(hub, "olga")
    fleet = olga.get("/ui/fleet").text
    assert 'data-device="a/door-1"' in fleet
    main = fleet.split("</header>")[1]
    assert "Add a device" not in main and "/revoke" not in main and "<form" not in main
    assert olga.post(ADD, data=FORM).status_code == 403
    assert olga.get(REVOKE).status_code == 403
    refused = olga.post(REVOKE)
    assert refused.status_code == 403 and "may not" in refused.text
    api = TestClient(hub)  # the API says the same
    operator = as_user(api, "olga")
    assert api.post("/sites/a/devices/front-door/enrolment", headers=operator).status_code == 403
    # A technician's browser, made to post by another site (cross-site request forgery).
    tim = signed_in(hub, "tim")
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        for path, data in ((ADD, FORM), (REVOKE, {})):
            reply = tim.post(path, data=data, headers=headers)
            assert reply.status_code == 403 and "another site" in reply.text, (path, headers)
    assert tokens(engine, "front-door") == []
    with engine.connect() as conn:
        assert conn.scalar(select(db.devices.c.revoked_at)) is None
    ours = {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}
    assert tim.post(ADD, data=FORM, headers=ours).status_code == 200


#: Forms the service refuses, what the page answers and the words it says why with.
REFUSED = [
    ({"device": "Front Door"}, 422, "id: String should match pattern"),
    (
        {"site": "a", "device": "door-1", "kind": "sensor"},
        422,
        "device &#39;door-1&#39; is registered as a door",
    ),
    ({"valid_minutes": "2"}, 422, "valid_minutes: a token is valid 5 to 10080 minutes, not 2"),
    ({"valid_minutes": "an hour"}, 422, "valid for: a whole number of minutes, from 5 to 10080"),
    ({"valid_minutes": "9" * 10}, 422, "valid_minutes: a token is valid 5 to 10080 minutes"),
    ({"site": "nowhere"}, 404, "no site &#39;nowhere&#39;"),
]


def test_a_refused_form_says_why_and_keeps_what_was_typed(hub, engine):
    nadia = signed_in(hub, "nadia")
    for change, status, message in REFUSED:
        typed = {**FORM, "site": "b", **change}
        reply = nadia.post(ADD, data=typed)
        assert reply.status_code == status, change
        assert f'<p class="error" role="alert">{message}' in reply.text, change
        form = reply.text[reply.text.index('action="/ui/fleet/devices"') :]
        assert f'value="{html.escape(typed["device"])}"' in form, change
        assert f'value="{html.escape(typed["valid_minutes"])}"' in form, change
        if typed["site"] != "nowhere":
            assert f'<option value="{typed["site"]}" selected>' in form, change
        assert f'<option value="{typed["kind"]}" selected>' in form, change
    assert tokens(engine, "front-door") == [] and tokens(engine, "door-1") == []


def test_a_technician_revokes_a_device_after_confirming(hub, engine):
    tim = signed_in(hub, "tim")
    assert 'href="/ui/sites/a/devices/door-1/revoke">Revoke<' in tim.get("/ui/fleet").text
    confirm = tim.get(REVOKE)
    assert confirm.status_code == 200 and "loses its access at once" in confirm.text
    assert f'<form class="actions" method="post" action="{REVOKE}">' in confirm.text
    with engine.connect() as conn:
        assert conn.scalar(select(db.devices.c.revoked_at)) is None, "asking changes nothing"
    done = tim.post(REVOKE)
    assert done.status_code == 200 and "Revoked at" in done.text
    # No broker here: what the page says when it is not reached, and how to finish.
    assert 'data-broker="failed"' in done.text and "The broker was not reached" in done.text
    assert f'action="{REVOKE}"' in done.text and "Try again" in done.text
    with engine.connect() as conn:
        revoked_at = conn.scalar(select(db.devices.c.revoked_at))
    assert revoked_at is not None
    row = fleet_row(tim.get("/ui/fleet").text, "a/door-1")
    assert 'data-revoked="yes"' in row and ">revoked</span>" in row and "Revoke again" in row
    again = tim.get(REVOKE).text
    assert "It was revoked at" in again
    api = TestClient(hub)
    (listed,) = api.get("/fleet", headers=as_user(api, "tim")).json()
    assert listed["revoked_at"] is not None and listed["enrolled_at"] is None
    assert tim.post("/ui/sites/a/devices/door-9/revoke").status_code == 404
    assert tim.get("/ui/sites/b/devices/door-1/revoke").status_code == 404


def test_a_hub_that_cannot_enrol_says_what_its_settings_need(engine):
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id="a", timezone="Europe/Berlin", name="Nord"))
        conn.execute(insert(db.devices).values(site="a", id="door-1", created_at=datetime.now(UTC)))
    add_staff(engine, operator_sites=["a"])
    tim = signed_in(create_app(engine), "tim")
    fleet = tim.get("/ui/fleet").text
    needs = "Devices cannot enrol at this hub: it needs [ca] directory and [broker.admin]"
    assert needs in fleet and 'action="/ui/fleet/devices"' not in fleet
    refused = tim.post(ADD, data=FORM)
    assert refused.status_code == 503 and needs in refused.text
    assert tokens(engine, "front-door") == []
    confirm = tim.get(REVOKE).text
    assert needs in confirm and "<button" not in confirm.split("</header>")[1]
    unavailable = tim.post(REVOKE)
    assert unavailable.status_code == 503 and "[ca] directory" in unavailable.text
    with engine.connect() as conn:
        assert conn.scalar(select(db.devices.c.revoked_at)) is None
