"""Enrolment through the API: who may make a token, what a bad request gets, and a hub not
set up for enrolment (no CA or broker admin) saying so. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from hub import db
from tests.support.hub import as_user


def _site(api, admin) -> None:
    site = {"id": "leipzig-ost", "name": "Leipzig-Ost"}
    assert api.post("/sites", json=site, headers=admin).status_code == 201


def test_technicians_and_admins_make_tokens_operators_do_not(api):
    admin, tim, olga = as_user(api, "nadia"), as_user(api, "tim"), as_user(api, "olga")
    _site(api, admin)
    url = "/sites/leipzig-ost/devices/front-door/enrolment"
    made = api.post(url, headers=tim)
    assert made.status_code == 201, made.text
    ticket = made.json()
    assert len(ticket["token"]) == 52 and ticket["device"] == "front-door"
    assert api.post(url, headers=olga).status_code == 403
    again = api.post(url, headers=admin, params={"valid_minutes": 5})
    assert again.status_code == 201 and again.json()["token"] != ticket["token"]
    with api.engine.connect() as conn:  # the newer token ended the older; only hashes kept
        hashes = conn.scalars(select(db.enrolment_tokens.c.token_hash)).all()
        registered = conn.scalars(select(db.devices.c.id)).all()
    assert len(hashes) == 1 and ticket["token"] not in hashes[0] and registered == ["front-door"]


def test_bad_requests_are_named_and_change_nothing(api):
    admin = as_user(api, "nadia")
    _site(api, admin)
    cases = [
        ("/sites/atlantis/devices/door-1/enrolment", {}, 404, "atlantis"),
        ("/sites/leipzig-ost/devices/Bad%20Id/enrolment", {}, 422, "id"),
        ("/sites/leipzig-ost/devices/acl/enrolment", {}, 422, "reserved"),
        ("/sites/leipzig-ost/devices/door-1/enrolment", {"kind": "toaster"}, 422, "kind"),
        ("/sites/leipzig-ost/devices/door-1/enrolment", {"valid_minutes": 1}, 422, "valid"),
        ("/sites/leipzig-ost/devices/door-1/enrolment", {"valid_minutes": 10**6}, 422, "valid"),
    ]
    for url, params, status, named in cases:
        response = api.post(url, params=params, headers=admin)
        assert response.status_code == status and named in response.text, (url, response.text)
    with api.engine.connect() as conn:
        assert conn.scalars(select(db.enrolment_tokens.c.token_hash)).all() == []
        assert conn.scalars(select(db.devices.c.id)).all() == []


def test_a_hub_without_a_ca_says_what_enrolment_needs(api):
    admin = as_user(api, "nadia")
    _site(api, admin)
    token = api.post("/sites/leipzig-ost/devices/door-1/enrolment", headers=admin).json()["token"]
    enrol = api.post("/enrol", json={"token": token, "csr": "-----BEGIN CERTIFICATE REQUEST-----"})
    assert enrol.status_code == 503 and "[ca] directory" in enrol.text
    revoke = api.post("/sites/leipzig-ost/devices/door-1/revoke", headers=admin)
    assert revoke.status_code == 503
