"""Invitations: a member or a company admin gets a one-time link (by mail through a real SMTP
server, or shown to whoever invited them), sets a password with it and is signed in; a link
works once, for a week, and guessing links is throttled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from hub import db
from hub.auth import Role
from tests.support.hub import add_staff, add_user, api_client, as_user
from tests.support.sites import add_sites
from tests.support.smtp import smtp_server
from tests.support.waiting import wait_for

NEW_PASSWORD = "my own long password"


@pytest.fixture
def mail_api(engine):
    """The hub's API sending mail through a real SMTP server; yields (api, inbox)."""
    add_staff(engine)
    with smtp_server() as server, api_client(engine, mail=server.mailer()) as api:
        yield api, server.inbox


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


def accept(api, token: str, password: str = NEW_PASSWORD):
    return api.post(f"/auth/invitations/{token}", json={"password": password})


def test_an_invitation_by_mail_lets_the_member_set_a_password_and_sign_in(mail_api):
    api, inbox = mail_api
    admin = add_sites(api)
    member = {"id": "anna", "name": "Anna Schmidt", "email": "anna@example.org"}
    assert api.post("/members", json=member, headers=admin).status_code == 201
    invited = api.post("/members/anna/invitation", headers=admin)
    assert invited.status_code == 201, invited.text
    answer = invited.json()
    assert answer["sent_to"] == "a***@example.org" and answer["link"] is None
    assert answer["username"] == "anna@example.org" and answer["role"] == "member"
    assert wait_for(lambda: len(inbox.messages) == 1, 10)
    assert inbox.messages[0]["To"] == "anna@example.org"
    assert "Anna Schmidt" in inbox.text() and "anna@example.org" in inbox.text()
    link = inbox.link()
    assert link.startswith("http://testserver/ui/invitation/hfi_")
    # Not signed in: the link alone sets the password, and signs her in.
    accepted = accept(api, token_of(link))
    assert accepted.status_code == 200, accepted.text
    me = api.get("/auth/me", headers={"Authorization": f"Bearer {accepted.json()['access_token']}"})
    assert me.json() | {"sites": []} == {
        "username": "anna@example.org", "role": "member", "sites": [],
        "member": "anna", "company": None,
    }  # fmt: skip
    as_user(api, "anna@example.org", NEW_PASSWORD)
    again = accept(api, token_of(link), "another long password")
    assert again.status_code == 410 and "ask whoever invited you" in again.json()["detail"]
    with api.engine.connect() as conn:  # the sent mail kept no link, the store no token
        assert conn.scalar(select(db.mail_outbox.c.body)) == ""
        assert token_of(link) not in str(conn.execute(select(db.invitations)).all())


def test_without_mail_the_inviter_gets_the_link_and_a_link_works_once(api):
    admin = add_sites(api)
    api.post("/members", json={"id": "bert", "name": "Bert"}, headers=admin)
    answer = api.post("/members/bert/invitation", headers=admin).json()
    assert answer["sent_to"] is None and answer["username"] == "bert"  # no address: his id
    token = token_of(answer["link"])
    short = accept(api, token, "short")
    assert short.status_code == 422 and "password" in short.text  # and the link still works
    # He cannot sign in before he chose a password, not even with the hash's placeholder.
    for guess in ("", "!unset", NEW_PASSWORD):
        refused = api.post("/auth/token", data={"username": "bert", "password": guess})
        assert refused.status_code in (401, 422)
    assert accept(api, token).status_code == 200
    assert accept(api, token).status_code == 410
    assert accept(api, "hfi_" + "x" * 43).status_code == 404
    assert accept(api, "x" * 101).status_code == 422


def test_a_new_invitation_ends_the_older_link_and_an_expired_link_is_refused(api):
    admin = add_sites(api)
    api.post("/members", json={"id": "carla", "name": "Carla"}, headers=admin)
    first = token_of(api.post("/members/carla/invitation", headers=admin).json()["link"])
    second = token_of(api.post("/members/carla/invitation", headers=admin).json()["link"])
    assert accept(api, first).status_code == 410
    with api.engine.begin() as conn:  # a week later
        conn.execute(
            update(db.invitations).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert accept(api, second).status_code == 410
    third = token_of(api.post("/members/carla/invitation", headers=admin).json()["link"])
    assert accept(api, third).status_code == 200


def test_an_invitation_again_resets_the_password_and_ends_the_old_sessions(api):
    admin = add_sites(api)
    api.post("/members", json={"id": "dora", "name": "Dora"}, headers=admin)
    link = api.post("/members/dora/invitation", headers=admin).json()["link"]
    session = {"Authorization": f"Bearer {accept(api, token_of(link)).json()['access_token']}"}
    reset = api.post("/members/dora/invitation", headers=admin).json()
    assert reset["username"] == "dora"
    assert api.get("/auth/me", headers=session).status_code == 200  # until the link is used
    assert accept(api, token_of(reset["link"]), "a second long password").status_code == 200
    assert api.get("/auth/me", headers=session).status_code == 401
    as_user(api, "dora", "a second long password")


def test_guessing_links_is_throttled_per_client(api):
    admin = add_sites(api)
    api.post("/members", json={"id": "emil", "name": "Emil"}, headers=admin)
    real = token_of(api.post("/members/emil/invitation", headers=admin).json()["link"])
    for n in range(5):
        assert accept(api, f"hfi_guess{n}").status_code == 404
    throttled = accept(api, "hfi_guess5")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert accept(api, real).status_code == 429  # even the right one, from this client
    with api.engine.connect() as conn:
        assert conn.scalar(select(db.invitations.c.used_at)) is None


def test_operators_invite_members_of_their_sites_only(api):
    admin = add_sites(api)
    api.post("/plans", json={"id": "ost", "sites": ["leipzig-ost"]}, headers=admin)
    api.post("/plans", json={"id": "borna", "sites": ["borna"]}, headers=admin)
    for member, plan in (("fritz", "ost"), ("gina", "borna")):
        api.post("/members", json={"id": member, "name": member.title()}, headers=admin)
        api.post(f"/members/{member}/grants", json={"plan": plan}, headers=admin)
    olga, tim = as_user(api, "olga"), as_user(api, "tim")
    fritz = api.post("/members/fritz/invitation", headers=olga)
    assert fritz.status_code == 201
    assert accept(api, token_of(fritz.json()["link"])).status_code == 200
    # Fritz has his password now: another link from olga would be a way into his account.
    taken = api.post("/members/fritz/invitation", headers=olga)
    assert taken.status_code == 409 and "network admin" in taken.json()["detail"]
    refused = api.post("/members/gina/invitation", headers=olga)
    assert refused.status_code == 404 and refused.json()["detail"] == "no member 'gina'"
    assert api.post("/members/ghost/invitation", headers=olga).status_code == 404
    assert api.post("/members/fritz/invitation", headers=tim).status_code == 403


def test_network_admins_invite_company_admins(mail_api):
    api, inbox = mail_api
    admin = add_sites(api)
    for company in ("acme", "other"):
        body = {"id": company, "name": company.upper(), "sites": ["borna"]}
        assert api.put(f"/companies/{company}", json=body, headers=admin).status_code == 200
    person = {"email": "cora@acme.example", "name": "Cora"}
    invited = api.post("/companies/acme/admins", json=person, headers=admin)
    assert invited.status_code == 201 and invited.json()["sent_to"] == "c***@acme.example"
    assert wait_for(lambda: len(inbox.messages) == 1, 10)
    accepted = accept(api, token_of(inbox.link()))
    assert accepted.json()["role"] == "company_admin"
    me = api.get("/auth/me", headers=as_user(api, "cora@acme.example", NEW_PASSWORD)).json()
    assert me["role"] == "company_admin" and me["company"] == "acme" and me["member"] is None
    assert api.post("/companies/acme/admins", json=person, headers=admin).status_code == 201
    assert api.post("/companies/other/admins", json=person, headers=admin).status_code == 409
    assert api.post("/companies/ghost/admins", json=person, headers=admin).status_code == 404
    bad = api.post("/companies/acme/admins", json={**person, "email": "no address"}, headers=admin)
    assert bad.status_code == 422 and "email" in bad.text
    olga = as_user(api, "olga")
    assert api.post("/companies/acme/admins", json=person, headers=olga).status_code == 403
    with api.engine.connect() as conn:
        assert conn.scalar(select(db.users.c.role).where(db.users.c.username == "olga")) == (
            Role.SITE_OPERATOR
        )


def test_a_member_whose_address_and_id_are_taken_as_user_names_is_refused_clearly(api):
    admin = add_sites(api)
    add_user(api.engine, Role.TECHNICIAN, username="hans@example.org")
    add_user(api.engine, Role.TECHNICIAN, username="hans")
    member = {"id": "hans", "name": "Hans", "email": "hans@example.org"}
    api.post("/members", json=member, headers=admin)
    refused = api.post("/members/hans/invitation", headers=admin)
    assert refused.status_code == 409 and "taken as user names" in refused.json()["detail"]


def test_erasing_a_member_erases_their_sign_in_too(api):
    admin = add_sites(api)
    api.post("/members", json={"id": "ida", "name": "Ida"}, headers=admin)
    link = api.post("/members/ida/invitation", headers=admin).json()["link"]
    session = {"Authorization": f"Bearer {accept(api, token_of(link)).json()['access_token']}"}
    export = api.get("/members/ida/export", headers=admin).json()
    assert [a["username"] for a in export["account"]] == ["ida"]
    assert api.get("/me/profile", headers=session).status_code == 200  # resolved and kept
    assert api.delete("/members/ida", headers=admin).status_code == 204
    assert api.get("/me/profile", headers=session).status_code == 401  # at once
    refused = api.post("/auth/token", data={"username": "ida", "password": NEW_PASSWORD})
    assert refused.status_code == 401
    with api.engine.connect() as conn:
        assert conn.execute(select(db.invitations)).all() == []


def test_erasing_a_member_drops_the_mail_to_them_still_in_the_outbox(api):
    from hub.services.mail import Letter, queue_mail

    admin = add_sites(api)
    for member in ("ida", "jan"):
        body = {"id": member, "name": member.title(), "email": f"{member}@example.org"}
        api.post("/members", json=body, headers=admin)
    with api.engine.begin() as conn:
        for member in ("ida", "jan"):
            letter = Letter(recipient=f"{member}@example.org", subject="Gebucht", body="Ihr Platz")
            queue_mail(conn, letter)
    assert api.delete("/members/ida", headers=admin).status_code == 204
    with api.engine.connect() as conn:
        left = conn.scalars(select(db.mail_outbox.c.recipient)).all()
    assert left == ["jan@example.org"]
